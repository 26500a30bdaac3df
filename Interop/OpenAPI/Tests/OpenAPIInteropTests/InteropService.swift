import Foundation
import HTTPTypes
import InteropAPI
import NIOConcurrencyHelpers
import OpenAPIRuntime

/// What the streaming operations saw, for the tests to assert that bodies were streamed, not buffered.
final class StreamProbe: Sendable {
    private struct State {
        var downloadProduced = 0
        var uploadProduced = 0
        var uploadProducedAtFirstServerChunk: Int?
    }

    private let state = NIOLockedValueBox(State())

    /// Bytes the server's download body has produced so far (it produces a chunk only when the transport asks).
    var downloadProduced: Int { state.withLockedValue { $0.downloadProduced } }
    func addDownloadProduced(_ count: Int) { state.withLockedValue { $0.downloadProduced += count } }

    /// Bytes the client's upload body has produced so far.
    var uploadProduced: Int { state.withLockedValue { $0.uploadProduced } }
    func addUploadProduced(_ count: Int) { state.withLockedValue { $0.uploadProduced += count } }

    /// How much of the upload the client had produced when the server's operation got its first chunk.
    var uploadProducedAtFirstServerChunk: Int? { state.withLockedValue { $0.uploadProducedAtFirstServerChunk } }
    func serverGotFirstUploadChunk() {
        state.withLockedValue { $0.uploadProducedAtFirstServerChunk = $0.uploadProducedAtFirstServerChunk ?? $0.uploadProduced }
    }
}

/// Bytes made one chunk at a time, only when the consumer asks for the next: byte `i` is `UInt8(truncatingIfNeeded: i)`.
/// `produced` is told of each chunk as it is made.
struct LazyBlob: AsyncSequence, Sendable {
    typealias Element = ArraySlice<UInt8>
    var size: Int
    var chunkSize: Int
    var produced: @Sendable (Int) -> Void

    func makeAsyncIterator() -> Iterator { Iterator(blob: self) }

    struct Iterator: AsyncIteratorProtocol {
        let blob: LazyBlob
        var offset = 0

        mutating func next() async throws -> ArraySlice<UInt8>? {
            guard offset < blob.size else { return nil }
            let count = Swift.min(blob.chunkSize, blob.size - offset)
            // Byte i is i mod 256 and every chunk but the last is a multiple of 256 long: each chunk starts the pattern.
            precondition(offset % 256 == 0, "chunkSize must be a multiple of 256")
            let chunk = LazyBlob.pattern(count)
            offset += count
            blob.produced(count)
            // A producer that takes a moment per chunk, like a real one: lets the consumer run in between.
            await Task.yield()
            return chunk[...]
        }
    }

    /// `count` bytes of 0, 1, … 255, 0, 1, …
    static func pattern(_ count: Int) -> ArraySlice<UInt8> {
        var bytes = [UInt8](repeating: 0, count: count)
        bytes.withUnsafeMutableBufferPointer { buffer in
            for i in buffer.indices { buffer[i] = UInt8(truncatingIfNeeded: i) }
        }
        return bytes[...]
    }

    /// The checksum the server computes of the blob: the sum of all bytes modulo 2^32.
    static func checksum(size: Int) -> Int64 {
        var sum: UInt32 = 0
        add(pattern(size), to: &sum)
        return Int64(sum)
    }

    /// Adds `bytes` to a running checksum.
    static func add(_ bytes: ArraySlice<UInt8>, to sum: inout UInt32) {
        bytes.withUnsafeBufferPointer { buffer in
            for byte in buffer { sum &+= UInt32(byte) }
        }
    }
}

/// The API of openapi.yaml, served the same way by every server under test.
struct InteropService: APIProtocol {
    let probe: StreamProbe

    func getItem(_ input: Operations.getItem.Input) async throws -> Operations.getItem.Output {
        guard input.path.itemID != "missing" else {
            return .notFound(.init(body: .json(.init(code: 404, message: "no item \(input.path.itemID)"))))
        }
        return .ok(
            .init(body: .json(.init(id: input.path.itemID, name: "item \(input.path.itemID)", tags: input.query.tags ?? [], verbose: input.query.verbose)))
        )
    }

    func createItem(_ input: Operations.createItem.Input) async throws -> Operations.createItem.Output {
        guard case .json(let item) = input.body else { throw UnexpectedBody() }
        guard !item.name.isEmpty else { return .badRequest(.init(body: .json(.init(code: 400, message: "name is empty")))) }
        return .created(.init(body: .json(.init(id: "id-\(item.name.count)", name: item.name, tags: item.tags ?? []))))
    }

    func downloadBlob(_ input: Operations.downloadBlob.Input) async throws -> Operations.downloadBlob.Output {
        let probe = probe
        let blob = LazyBlob(size: Int(input.path.size), chunkSize: input.query.chunkSize ?? 16 << 10) { probe.addDownloadProduced($0) }
        return .ok(.init(body: .binary(HTTPBody(blob, length: .unknown, iterationBehavior: .single))))
    }

    func uploadBlob(_ input: Operations.uploadBlob.Input) async throws -> Operations.uploadBlob.Output {
        guard case .binary(let body) = input.body else { throw UnexpectedBody() }
        var byteCount: Int64 = 0
        var chunkCount = 0
        var sum: UInt32 = 0
        for try await chunk in body {
            if chunkCount == 0 { probe.serverGotFirstUploadChunk() }
            chunkCount += 1
            byteCount += Int64(chunk.count)
            LazyBlob.add(chunk, to: &sum)
        }
        return .ok(.init(body: .json(.init(byteCount: byteCount, chunkCount: chunkCount, checksum: Int64(sum)))))
    }

    struct UnexpectedBody: Error {}
}
