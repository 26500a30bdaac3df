import Tracing
import Instrumentation
import HTTPTypes
import NIOCore

/// What a ``ServerSession`` records when its ``ServerSession/Configuration/observability`` is on: its connections'
/// metrics, and around each request its metrics and its span. Made once per server; `nil` when off.
final class ServerObserver: Sendable {
    let connectionMetrics: ConnectionMetrics?
    let requestMetrics: RequestMetrics?
    let tracer: (any Tracer)?

    init?(_ observability: Observability) {
        guard observability.isEnabled else { return nil }
        connectionMetrics = observability.metricsFactory.map { ConnectionMetrics(role: .server, factory: $0) }
        requestMetrics = observability.metricsFactory.map { RequestMetrics(role: .server, factory: $0) }
        tracer = observability.tracer
    }

    /// The handler, with metrics and a span around each of its requests.
    func instrument(_ handler: @escaping ServerSession.Handler) -> ServerSession.Handler {
        if let tracer {
            return { [self] request in try await traced(request, handler, tracer: tracer) }
        }
        return { [self] request in try await measured(request, handler) }
    }

    // MARK: Metrics only

    private func measured(_ request: ServerSession.Request, _ handler: ServerSession.Handler) async throws -> ServerSession.Response {
        let start = monotonicNanoseconds()
        let method = MethodLabel(request.method)
        let response: ServerSession.Response
        do {
            response = try await handler(request)
        } catch {
            handlerFailed(method, error, start: start)
            throw error
        }
        return ended(response, method: method, start: start, span: nil)
    }

    /// Counts a response now (a whole body) or when its writer returns (a streaming body); ends `span` then.
    private func ended(_ response: ServerSession.Response, method: MethodLabel, start: UInt64, span: (any Span)?) -> ServerSession.Response {
        let status = response.head.status
        span?.setResponseStatus(status, minimumErrorCode: 500)
        guard case .writer(let produce) = response.body.storage else {
            requestMetrics?.completed(method, status: status, nanoseconds: monotonicNanoseconds() &- start)
            span?.end()
            return response
        }
        var response = response
        response.body = .writer { [requestMetrics] writer in
            defer {
                requestMetrics?.completed(method, status: status, nanoseconds: monotonicNanoseconds() &- start)
                span?.end()
            }
            do {
                if let span {
                    try await InstrumentationContext.$current.withValue(span.context) { try await produce(writer) }
                } else {
                    try await produce(writer)
                }
            } catch {
                requestMetrics?.failed(method, error: error)
                span?.recordError(error)
                throw error
            }
        }
        return response
    }

    /// The handler threw: the server answers 500 (or resets the stream if it was cancelled).
    private func handlerFailed(_ method: MethodLabel, _ error: any Error, start: UInt64) {
        guard let requestMetrics else { return }
        requestMetrics.failed(method, error: error)
        if !(error is CancellationError) {
            requestMetrics.completed(method, status: .internalServerError, nanoseconds: monotonicNanoseconds() &- start)
        }
    }

    // MARK: Tracing

    private func traced(_ request: ServerSession.Request, _ handler: ServerSession.Handler, tracer: any Tracer) async throws -> ServerSession.Response {
        let start = monotonicNanoseconds()
        let method = MethodLabel(request.method)
        var parent = InstrumentationContext.current ?? .topLevel
        tracer.extract(request.headers, into: &parent, using: HTTPFieldsExtractor())
        let span = tracer.startSpan(method == .other ? "HTTP" : method.name, context: parent, ofKind: .server)
        // A span that is not recorded (not sampled, or a no-op tracer) is not given attributes it would drop.
        if span.isRecording { span.updateAttributes { attributes in
            request.head.setCommonSpanAttributes(&attributes, method: method)
            let (path, query) = request.head.pathAndQuery
            attributes["url.path"] = String(path)
            if let query { attributes["url.query"] = String(query) }
            if let remote = request.remoteAddress {
                if let address = remote.ipAddress { attributes["client.address"] = address }
                if let port = remote.port { attributes["client.port"] = port }
            }
        } }
        let response: ServerSession.Response
        do {
            response = try await InstrumentationContext.$current.withValue(span.context) { try await handler(request) }
        } catch {
            handlerFailed(method, error, start: start)
            if error is CancellationError {
                span.setFailure(error)
            } else {
                span.recordError(error)
                span.setResponseStatus(.internalServerError, minimumErrorCode: 500)
            }
            span.end()
            throw error
        }
        return ended(response, method: method, start: start, span: span)
    }
}
