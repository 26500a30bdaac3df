import Tracing
import Instrumentation
import HTTPTypes
import NIOCore

/// What an ``HTTP2Client`` records when its ``HTTP2Client/Configuration/observability`` is on: its connections'
/// metrics, and around each ``HTTP2Client/execute(_:body:timeout:)`` call its metrics and one `.client` span. Made
/// once per client; `nil` when off.
final class ClientObserver: Sendable {
    let connectionMetrics: ConnectionMetrics?
    let requestMetrics: RequestMetrics?
    let tracer: (any Tracer)?

    init?(_ observability: Observability) {
        guard observability.isEnabled else { return nil }
        connectionMetrics = observability.metricsFactory.map { ConnectionMetrics(role: .client, factory: $0) }
        requestMetrics = observability.metricsFactory.map { RequestMetrics(role: .client, factory: $0) }
        tracer = observability.tracer
    }

    /// Sends `request` with `client`, measured up to the response head, inside a span whose context goes out in the
    /// request's headers (the tracer's propagation format, e.g. W3C `traceparent`).
    func execute(_ request: HTTPRequest, body: MessageBody, timeout: Duration?, on client: HTTP2Client) async throws -> HTTP2Client.Response {
        let start = monotonicNanoseconds()
        let method = MethodLabel(request.method)
        guard let tracer else {
            do {
                let response = try await client.send(request, body: body, timeout: timeout, observation: nil)
                requestMetrics?.completed(method, status: response.status, nanoseconds: monotonicNanoseconds() &- start)
                return response
            } catch {
                requestMetrics?.failed(method, error: error)
                throw error
            }
        }
        let span = tracer.startSpan(method == .other ? "HTTP" : method.name, context: InstrumentationContext.current ?? .topLevel, ofKind: .client)
        defer { span.end() }
        // A span that is not recorded (not sampled, or a no-op tracer) is not given attributes it would drop.
        if span.isRecording {
            span.updateAttributes { attributes in
                request.setCommonSpanAttributes(&attributes, method: method)
                attributes["url.full"] = request.urlString
                attributes["url.path"] = String(request.pathAndQuery.path)
            }
        }
        var request = request
        tracer.inject(span.context, into: &request.headerFields, using: HTTPFieldsInjector())
        let observation = RequestObservation(span: span)
        do {
            let response = try await InstrumentationContext.$current.withValue(span.context) {
                try await client.send(request, body: body, timeout: timeout, observation: observation)
            }
            observation.recordResends()
            span.setResponseStatus(response.status, minimumErrorCode: 400)
            requestMetrics?.completed(method, status: response.status, nanoseconds: monotonicNanoseconds() &- start)
            return response
        } catch {
            observation.recordResends()
            span.setFailure(error)
            requestMetrics?.failed(method, error: error)
            throw error
        }
    }
}

/// One traced call's retries and redirects, told by ``HTTP2Client``'s loops (one task: not shared).
final class RequestObservation {
    let span: any Span
    /// Attempts after the first, for any reason (OpenTelemetry's `http.request.resend_count`).
    private(set) var resends = 0

    init(span: any Span) {
        self.span = span
    }

    /// An attempt failed and the request is sent again: a `retry` event with the error.
    func retrying(after error: any Error) {
        resends += 1
        span.addEvent(SpanEvent(name: "retry", attributes: ["http.request.resend_count": .int64(Int64(resends)), "error.type": .string(RequestMetrics.errorType(error))]))
    }

    /// A redirect to `url` is followed: a `redirect` event.
    func redirected(to url: String) {
        resends += 1
        span.addEvent(SpanEvent(name: "redirect", attributes: ["http.request.resend_count": .int64(Int64(resends)), "url.full": .string(url)]))
    }

    func recordResends() {
        if resends > 0 { span.attributes["http.request.resend_count"] = resends }
    }
}
