import Testing
import NIOCore
import NIOEmbedded
@testable import NGHTTP2Async

/// A connection's open streams: the one used last is kept aside, and never outlives its removal.
@Suite struct StreamTableTests {
    let connection: ConnectionReference

    init() throws {
        let channel = EmbeddedChannel()
        let handler = try ConnectionHandler(role: .client, configuration: ClientSession.Configuration().connectionConfiguration, delegate: nil)
        connection = ConnectionReference(handler, eventLoop: channel.embeddedEventLoop, closed: channel.embeddedEventLoop.makeSucceededVoidFuture())
    }

    func stream(_ id: Int32) -> StreamContext {
        StreamContext(id: id, inbound: StreamReader.Storage(streamID: id, connection: connection))
    }

    @Test func aStreamIsFoundUntilItIsRemovedEvenRightAfterItsLastLookup() {
        let table = StreamTable()
        let one = stream(1), three = stream(3)
        table[1] = one
        table[3] = three
        #expect(table[1] === one && table[3] === three && table[1] === one)
        #expect(table.removeValue(forKey: 1) === one)
        #expect(table[1] == nil)
        #expect(table[3] === three)
        table[3] = nil
        #expect(table[3] == nil && table.isEmpty)
    }

    @Test func takingAllStreamsEmptiesTheTable() {
        let table = StreamTable()
        for id in [1, 3, 5] as [Int32] { table[id] = stream(id) }
        _ = table[5]
        let taken = table.takeAll()
        #expect(taken.keys.sorted() == [1, 3, 5])
        #expect(table.count == 0 && table[5] == nil)
    }
}
