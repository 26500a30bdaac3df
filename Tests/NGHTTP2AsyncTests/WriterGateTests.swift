import Testing
@testable import NGHTTP2Async

/// A streaming body's writer-side flow control, without NIO or sockets.
@Suite struct WriterGateTests {
    struct Boom: Error {}

    @Test func belowTheWatermarkAWriteDoesNotWait() async throws {
        let gate = WriterGate(highWatermark: 100)
        try gate.admit(60)
        try await gate.waitForRoom()
        try gate.admit(40)
        try await gate.waitForRoom()  // exactly at the watermark: still room
    }

    @Test func aboveTheWatermarkTheWriterWaitsUntilHalfIsTaken() async throws {
        let gate = WriterGate(highWatermark: 100)
        try gate.admit(150)
        let resumed = ManagedCounter()
        let writer = Task {
            try await gate.waitForRoom()
            resumed.add(1)
        }
        try await Task.sleep(for: .milliseconds(20))
        gate.drained(60)  // 90 left: above half the watermark
        try await Task.sleep(for: .milliseconds(20))
        #expect(resumed.value == 0)
        gate.drained(40)  // 50 left: half
        try await writer.value
        #expect(resumed.value == 1)
    }

    @Test func aFailureReachesAWaitingWriterAndEveryLaterCall() async throws {
        let gate = WriterGate(highWatermark: 10)
        try gate.admit(20)
        let writer = Task { try await gate.waitForRoom() }
        try await Task.sleep(for: .milliseconds(20))
        gate.fail(Boom())
        await #expect(throws: Boom.self) { try await writer.value }
        #expect(throws: Boom.self) { try gate.admit(1) }
        #expect(throws: Boom.self) { try gate.close() }
    }

    @Test func writingAfterTheEndThrows() throws {
        let gate = WriterGate(highWatermark: 10)
        try gate.close()
        #expect(throws: HTTP2Error.self) { try gate.admit(1) }
    }
}
