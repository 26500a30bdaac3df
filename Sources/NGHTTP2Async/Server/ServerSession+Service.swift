public import ServiceLifecycle

/// A server is a `Service` of swift-service-lifecycle: a `ServiceGroup` runs it, and the group's graceful shutdown
/// (SIGTERM, say) closes it gracefully.
///
/// ```swift
/// import NGHTTP2Async
/// import ServiceLifecycle
///
/// let server = try await ServerSession.bind(host: "0.0.0.0", port: 8080) { request in
///     ServerSession.Response(status: .ok, body: .text("hello"))
/// }
/// let group = ServiceGroup(services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
/// try await group.run()   // returns after SIGTERM, once every request in flight was answered
/// ```
///
/// ``run()`` is the service's run. When the group shuts down gracefully, the server does what
/// ``close(gracePeriod:)`` does: it stops accepting, sends every connection a GOAWAY notice and, one round trip
/// later, the final GOAWAY, lets the streams in flight finish within ``Configuration/gracePeriod``, closes what is
/// left, and `run()` returns once every connection is closed. Requests the server did not take (above the final
/// GOAWAY's last stream ID) fail on the client with an error that says they are safe to send again elsewhere.
///
/// Cancelling `run()` (the group cancels its services when a service fails, on a cancellation signal, or when
/// `maximumGracefulShutdownDuration` has passed) closes the same way, bounded by ``Configuration/gracePeriod``; keep
/// the group's `maximumGracefulShutdownDuration`, if you set one, above that period. Outside a `ServiceGroup`
/// nothing changes: `run()` waits until ``close(gracePeriod:)`` or cancellation.
extension ServerSession: Service {}
