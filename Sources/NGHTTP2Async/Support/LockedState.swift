import Synchronization

#if NGHTTP2_TSAN
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
#endif

/// State guarded by a lock: `Synchronization.Mutex`, stored inline (no allocation of its own), with the one addition
/// that a ThreadSanitizer build can see it.
///
/// Why not `Mutex` directly: on Linux this toolchain's `Mutex` takes and gives up an uncontended lock with an atomic
/// compare-and-swap inlined into our (instrumented) code, but a contended one in the library's slow path, with a raw
/// futex that ThreadSanitizer does not intercept. After a contended hand-over it sees no happens-before edge between
/// the two critical sections and reports the guarded state as raced ("data race", "Swift access race"); a 10-line
/// program whose threads share a `Mutex`-guarded array shows it. `scripts/test --sanitize thread` builds with
/// `-DNGHTTP2_TSAN`, and then each critical section also tells ThreadSanitizer what the lock does:
/// `__tsan_acquire(address)` once the lock is taken, `__tsan_release(address)` before it is given up, on the address
/// of the `Mutex` (stable: it lives inline in its owner, and a borrowed noncopyable value is neither copied nor
/// moved). The lock itself stays the same `Mutex`, so the sanitized build exercises the lock that ships.
///
/// Normal builds compile none of that: `withLock` is `Mutex.withLock`, not even a branch added, and the state stays
/// inline in its owner (no allocation of its own, as `Mutex`). A run-time check instead of the compile-time one
/// would cost every critical section a look at a lazily initialised global.
struct LockedState<Value: ~Copyable>: ~Copyable, Sendable {
    private let mutex: Mutex<Value>

    init(_ initialValue: consuming sending Value) {
        mutex = Mutex(initialValue)
    }

    /// Runs `body` with the lock held.
    @inline(__always)
    borrowing func withLock<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        #if NGHTTP2_TSAN
        // The mutex's own address (a borrow of it: `Mutex` is never copied or moved while borrowed). Not the guarded
        // value's: taking that would be an access to the value before the acquire.
        let address = withUnsafePointer(to: mutex) { UnsafeMutableRawPointer(mutating: $0) }
        return try mutex.withLock { (value: inout sending Value) throws(E) -> sending Result in
            ThreadSanitizerAnnotations.acquire?(address)
            defer { ThreadSanitizerAnnotations.release?(address) }
            return try body(&value)
        }
        #else
        return try mutex.withLock(body)
        #endif
    }
}

#if NGHTTP2_TSAN
/// ThreadSanitizer's annotation functions, found once in the running process (its runtime is linked into a
/// `-sanitize=thread` executable). `nil` when it is not there: the annotations are then no-ops.
enum ThreadSanitizerAnnotations {
    typealias Annotation = @convention(c) (UnsafeMutableRawPointer?) -> Void

    static let acquire: Annotation? = lookUp("__tsan_acquire")
    static let release: Annotation? = lookUp("__tsan_release")

    private static func lookUp(_ name: String) -> Annotation? {
        #if canImport(Glibc)
        let handle = UnsafeMutableRawPointer(bitPattern: 0)  // RTLD_DEFAULT
        #else
        let handle = UnsafeMutableRawPointer(bitPattern: -2)  // RTLD_DEFAULT on Darwin
        #endif
        guard let symbol = dlsym(handle, name) else { return nil }
        return unsafeBitCast(symbol, to: Annotation.self)
    }
}
#endif
