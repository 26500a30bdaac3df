public import ServiceLifecycle

/// A client is a `Service` of swift-service-lifecycle, so that a `ServiceGroup` can own its lifetime.
///
/// Running the client is optional: it sends requests whether or not ``run()`` runs. What `run()` adds is that the
/// group shuts the client down: it waits until the group shuts down gracefully (or until it is cancelled), then
/// calls ``shutdown()``, which lets the requests in flight finish and closes every connection.
///
/// ```swift
/// let client = HTTP2Client()
/// let group = ServiceGroup(services: [client, server], gracefulShutdownSignals: [.sigterm], logger: logger)
/// try await group.run()   // on SIGTERM: the client finishes what it sends, then closes its connections
/// ```
///
/// In a group, list the client before the services that use it: the group shuts services down in reverse order, so
/// that they are done sending before the client stops taking requests.
extension HTTP2Client: Service {
    /// Waits for the group's graceful shutdown or for cancellation, then ``shutdown()``.
    ///
    /// Outside a `ServiceGroup` only cancellation ends the wait. Do not run ``shared``: nothing else may shut it down.
    public func run() async throws {
        try? await gracefulShutdown()  // throws CancellationError when cancelled: shut down all the same
        await shutdown()
    }
}
