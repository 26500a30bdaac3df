// The continuations on the hot paths (one per request, one per waiting read) are checked in debug builds, where a
// double resume or a lost continuation traps with a message, and unchecked in release builds, where they cost no
// allocation of their own.

#if DEBUG
/// A continuation that is `CheckedContinuation` in debug builds and `UnsafeContinuation` in release builds.
/// Make one with ``withFastThrowingContinuation(isolation:function:_:)``; resume it exactly once.
typealias FastContinuation<T, E: Error> = CheckedContinuation<T, E>
#else
/// A continuation that is `CheckedContinuation` in debug builds and `UnsafeContinuation` in release builds.
/// Make one with ``withFastThrowingContinuation(isolation:function:_:)``; resume it exactly once.
typealias FastContinuation<T, E: Error> = UnsafeContinuation<T, E>
#endif

/// Suspends the current task and calls `body` with a ``FastContinuation`` for it: checked in debug builds
/// (`withCheckedThrowingContinuation`), unchecked in release builds (`withUnsafeThrowingContinuation`).
func withFastThrowingContinuation<T>(
    isolation: isolated (any Actor)? = #isolation,
    function: String = #function,
    _ body: (FastContinuation<T, any Error>) -> Void
) async throws -> sending T {
    #if DEBUG
    try await withCheckedThrowingContinuation(isolation: isolation, function: function, body)
    #else
    try await withUnsafeThrowingContinuation(isolation: isolation, body)
    #endif
}
