// The continuations on the hot paths (one per request, one per waiting read) are checked in debug builds, where a
// double resume or a lost continuation traps with a message, and unchecked in release builds, where they cost no
// allocation of their own.

#if NGHTTP2_TSAN
/// Under ThreadSanitizer (`scripts/test --sanitize thread`): a `CheckedContinuation` that also tells ThreadSanitizer
/// that its resume happens before the resumed task goes on. The Swift runtime annotates a resume that wakes a
/// suspended task, but not one that comes before the task reached its `await`: the task then goes on at once after
/// an uninstrumented atomic load, and ThreadSanitizer reports whatever the resuming thread wrote before the resume
/// (the response's `StreamReader`, made on the event loop) as raced by the task. The hand-off object exists only in
/// this build.
struct FastContinuation<T, E: Error>: Sendable {
    let base: CheckedContinuation<T, E>
    let handOff: ThreadSanitizerHandOff

    func resume(returning value: sending T) {
        handOff.release()
        base.resume(returning: value)
    }

    func resume(throwing error: E) {
        handOff.release()
        base.resume(throwing: error)
    }

    func resume(with result: sending Result<T, E>) {
        handOff.release()
        base.resume(with: result)
    }
}

/// What a resume and the resumed task synchronise on, for ThreadSanitizer (its address).
final class ThreadSanitizerHandOff: Sendable {
    func release() { ThreadSanitizerAnnotations.release?(Unmanaged.passUnretained(self).toOpaque()) }
    func acquire() { ThreadSanitizerAnnotations.acquire?(Unmanaged.passUnretained(self).toOpaque()) }
}

nonisolated(nonsending) func withFastThrowingContinuation<T>(
    function: String = #function,
    _ body: (FastContinuation<T, any Error>) -> Void
) async throws -> sending T {
    let handOff = ThreadSanitizerHandOff()
    defer { handOff.acquire() }
    return try await withCheckedThrowingContinuation(isolation: #isolation, function: function) {
        body(FastContinuation(base: $0, handOff: handOff))
    }
}
#else
#if DEBUG
/// A continuation that is `CheckedContinuation` in debug builds and `UnsafeContinuation` in release builds.
/// Make one with ``withFastThrowingContinuation(function:_:)``; resume it exactly once.
typealias FastContinuation<T, E: Error> = CheckedContinuation<T, E>
#else
/// A continuation that is `CheckedContinuation` in debug builds and `UnsafeContinuation` in release builds.
/// Make one with ``withFastThrowingContinuation(function:_:)``; resume it exactly once.
typealias FastContinuation<T, E: Error> = UnsafeContinuation<T, E>
#endif

/// Suspends the current task and calls `body` with a ``FastContinuation`` for it: checked in debug builds
/// (`withCheckedThrowingContinuation`), unchecked in release builds (`withUnsafeThrowingContinuation`).
nonisolated(nonsending) func withFastThrowingContinuation<T>(
    function: String = #function,
    _ body: (FastContinuation<T, any Error>) -> Void
) async throws -> sending T {
    #if DEBUG
    try await withCheckedThrowingContinuation(isolation: #isolation, function: function, body)
    #else
    try await withUnsafeThrowingContinuation(isolation: #isolation, body)
    #endif
}
#endif
