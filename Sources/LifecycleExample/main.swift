// A server run by a ServiceGroup: SIGTERM (or SIGINT) closes it gracefully, answering every request it took.
//
//     swift run LifecycleExample [port] [delay-ms]
//
// Prints "listening on PORT" to standard output once bound; logs to standard error. Every request is answered with
// 200 "ok" after `delay-ms` (200 by default). Exits 0 after a graceful shutdown.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import NGHTTP2Async
import ServiceLifecycle
import UnixSignals

// A child inherits its parent's signal mask, and a parent that spawns from a Dispatch thread (which blocks most
// signals) passes that mask on; the ServiceGroup only sees a signal that is delivered. (Foundation's Process on
// Swift 6.3 starts children with an empty mask, so with it this is a no-op.) Unblock before any thread starts.
var unblocked = sigset_t()
sigemptyset(&unblocked)
sigaddset(&unblocked, SIGTERM)
sigaddset(&unblocked, SIGINT)
pthread_sigmask(SIG_UNBLOCK, &unblocked, nil)

let arguments = CommandLine.arguments.dropFirst()
let port = arguments.first.flatMap { Int($0) } ?? 0
let delay = arguments.dropFirst().first.flatMap { Int($0) } ?? 200

LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = .info
    return handler
}
let logger = Logger(label: "lifecycle-example")

var configuration = ServerSession.Configuration()
configuration.gracePeriod = .seconds(10)
configuration.logger = logger
let server = try await ServerSession.bind(host: "127.0.0.1", port: port, configuration: configuration) { request in
    try await Task.sleep(for: .milliseconds(delay))
    return ServerSession.Response(body: .text("ok"))
}
announce(port: server.port)

let group = ServiceGroup(services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
try await group.run()
logger.info("closed gracefully")

/// Prints the port for the parent process. A function of its own, so that the line's string is freed when it returns
/// (a temporary of the top-level async code lives until the process exits, and AddressSanitizer calls it a leak).
func announce(port: Int) {
    print("listening on \(port)")
    fflush(nil)  // every stream: a pipe is fully buffered
}
