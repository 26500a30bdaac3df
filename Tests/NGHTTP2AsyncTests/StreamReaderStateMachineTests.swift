import Testing
import NIOCore
@testable import NGHTTP2Async

/// The body buffer between a connection and its reader, without NIO or sockets.
@Suite struct StreamReaderStateMachineTests {
    typealias Machine = StreamReader.StateMachine

    final class Box: @unchecked Sendable {
        var machine = Machine()
    }

    func receive(_ machine: inout Machine, _ count: Int, byte: UInt8 = 1) -> Machine.ReceiveAction {
        let bytes = [UInt8](repeating: byte, count: count)
        return bytes.withUnsafeBytes { machine.receive($0) }
    }

    @Test func chunksReceivedWhileNobodyReadsAreGatheredUpToTheLimit() {
        var machine = Machine()
        for _ in 0..<3 { #expect(receive(&machine, 16384) == .buffered) }
        guard case .chunk(let first, let scheduleCredit) = machine.read(maxBytes: .max) else {
            Issue.record("no chunk")
            return
        }
        #expect(first.readableBytes == 3 * 16384)
        #expect(scheduleCredit)
        // Past the limit, a new chunk starts.
        for _ in 0..<(Machine.coalescingLimit / 16384 + 1) { _ = receive(&machine, 16384) }
        guard case .chunk(let full, let again) = machine.read(maxBytes: .max) else {
            Issue.record("no chunk")
            return
        }
        #expect(full.readableBytes == Machine.coalescingLimit)
        #expect(!again, "a credit hop is already pending")
        #expect(machine.takeCredit() == 3 * 16384 + Machine.coalescingLimit)
        guard case .chunk(let rest, _) = machine.read(maxBytes: .max) else {
            Issue.record("no chunk")
            return
        }
        #expect(rest.readableBytes == 16384)
        #expect(machine.bufferedBytes == 0)
    }

    @Test func aWaitingReaderIsWokenOnceWithEverythingTheBurstBrought() async throws {
        let box = Box()
        let chunk: ByteBuffer? = try await withFastThrowingContinuation { continuation in
            guard case .wait = box.machine.read(maxBytes: .max) else { return continuation.resume(returning: nil) }
            box.machine.wait(continuation, maxBytes: .max)
            #expect(receive(&box.machine, 100, byte: 1) == .wakeReader)
            #expect(receive(&box.machine, 50, byte: 2) == .buffered)
            // The end arrives in the same burst: the wake-up still hands over the bytes first.
            guard case .none = box.machine.finish(trailers: nil) else {
                Issue.record("the end overtook queued bytes")
                return
            }
            guard let (waiter, chunk) = box.machine.wake() else { return continuation.resume(returning: nil) }
            waiter.resume(returning: chunk)
        }
        #expect(chunk.map { Array($0.readableBytesView) } == Array(repeating: 1, count: 100) + Array(repeating: 2, count: 50))
        guard case .end = box.machine.read(maxBytes: .max) else {
            Issue.record("expected the end")
            return
        }
        #expect(box.machine.wake() == nil)
    }

    @Test func aWakeUpGivesAtMostWhatTheReaderAskedFor() async throws {
        let box = Box()
        let chunk: ByteBuffer? = try await withFastThrowingContinuation { continuation in
            _ = box.machine.read(maxBytes: 10)
            box.machine.wait(continuation, maxBytes: 10)
            _ = receive(&box.machine, 25)
            guard let (waiter, chunk) = box.machine.wake() else { return continuation.resume(returning: nil) }
            waiter.resume(returning: chunk)
        }
        #expect(chunk?.readableBytes == 10)
        #expect(box.machine.bufferedBytes == 15)
    }

    @Test func aSecondReadWhileOneWaitsIsToldTheReaderIsBusyAndTheWaitingReadStillGetsTheBytes() async throws {
        let box = Box()
        let chunk: ByteBuffer? = try await withFastThrowingContinuation { continuation in
            guard case .wait = box.machine.read(maxBytes: .max) else { return continuation.resume(returning: nil) }
            box.machine.wait(continuation, maxBytes: .max)
            guard case .failed(let error) = box.machine.read(maxBytes: .max) else {
                Issue.record("a second read while one waits was not refused")
                return continuation.resume(returning: nil)
            }
            #expect(error as? HTTP2Error == .readerBusy)
            #expect(receive(&box.machine, 20) == .wakeReader)
            guard let (waiter, chunk) = box.machine.wake() else { return continuation.resume(returning: nil) }
            waiter.resume(returning: chunk)
        }
        #expect(chunk?.readableBytes == 20)
        // With nobody waiting, reading works again.
        _ = receive(&box.machine, 5)
        guard case .chunk(let next, _) = box.machine.read(maxBytes: .max) else {
            Issue.record("no chunk")
            return
        }
        #expect(next.readableBytes == 5)
    }

    @Test func theContinuationsAreCheckedInDebugBuildsAndUncheckedInReleaseBuilds() {
        #if NGHTTP2_TSAN
        // The ThreadSanitizer build (scripts/test --sanitize thread) wraps a CheckedContinuation, to tell TSan about
        // each hand-off: this compiles only if it does.
        let base: KeyPath<FastContinuation<Int, any Error>, CheckedContinuation<Int, any Error>> = \.base
        #expect(base == \FastContinuation<Int, any Error>.base)
        #elseif DEBUG
        let expected: Any.Type = CheckedContinuation<Int, any Error>.self
        #expect(FastContinuation<Int, any Error>.self == expected)
        #else
        let expected: Any.Type = UnsafeContinuation<Int, any Error>.self
        #expect(FastContinuation<Int, any Error>.self == expected)
        #endif
    }

    @Test func failureDropsQueuedBytesForCreditAndAfterwardsBytesAreDiscarded() {
        var machine = Machine()
        _ = receive(&machine, 500)
        let (action, discarded) = machine.fail(CancellationError())
        #expect(discarded == 500)
        guard case .none = action else {
            Issue.record("nobody was waiting")
            return
        }
        #expect(receive(&machine, 10) == .discard)
        guard case .failed = machine.read(maxBytes: .max) else {
            Issue.record("expected the failure")
            return
        }
    }

    @Test func aDroppedReaderReturnsWhatItLeftUnread() {
        var machine = Machine()
        _ = receive(&machine, 300)
        let (unread, wasOpen) = machine.drop()
        #expect(unread == 300 && wasOpen)
        #expect(receive(&machine, 10) == .discard)
    }
}
