public import CoreMetrics
public import Tracing
import Instrumentation
import HTTPTypes
import NGHTTP2
import NIOCore

/// Where an ``HTTP2Client`` or a ``ServerSession`` reports metrics
/// ([swift-metrics](https://github.com/apple/swift-metrics)) and request spans
/// ([swift-distributed-tracing](https://github.com/apple/swift-distributed-tracing)).
///
/// Both are off by default, and the global `MetricsSystem` / `InstrumentationSystem` are never read: pass the factory
/// and the tracer explicitly. With both `nil` no metric object is made and a request costs one `nil` check.
///
/// ```swift
/// var configuration = ServerSession.Configuration()
/// configuration.observability = Observability(metricsFactory: prometheus, tracer: otelTracer)
/// ```
///
/// Metrics (each label starts with `nghttp2.server.` or `nghttp2.client.`):
///
/// | label | kind | dimensions |
/// | --- | --- | --- |
/// | `connections.open` | meter | |
/// | `connections.total` | counter | |
/// | `streams.open` | meter | |
/// | `requests` | counter | `http.request.method`, `http.response.status_class` (`2xx`, …) |
/// | `request.duration` | timer (seconds) | `http.request.method`, `http.response.status_class` |
/// | `request.errors` | counter | `http.request.method`, `error.type` |
/// | `bytes` | counter | `direction` (`received`, `sent`) |
/// | `rst_stream` | counter | `direction`, `error_code` (`CANCEL`, …) |
/// | `goaway` | counter | `direction`, `error_code` |
///
/// Methods other than the nine of RFC 9110 and PATCH are counted as `_OTHER` (as OpenTelemetry does), so that a
/// peer cannot grow the number of metric objects.
///
/// Spans: one `.server` span per request on a server, one `.client` span per ``HTTP2Client/execute(_:body:timeout:)``
/// call (retries and redirects included), named by the method, with OpenTelemetry's HTTP attributes. The client
/// injects the span's context into the request's headers and the server extracts it; which headers carry it
/// (`traceparent` and `tracestate` for W3C Trace Context) is the tracer's choice.
public struct Observability: Sendable {
    /// Makes the metrics; `nil` (the default) records none.
    public var metricsFactory: (any MetricsFactory)?
    /// Starts the request spans and propagates their context; `nil` (the default) traces nothing.
    public var tracer: (any Tracer)?

    /// Metrics from `metricsFactory` and spans from `tracer`; each is off when `nil`.
    public init(metricsFactory: (any MetricsFactory)? = nil, tracer: (any Tracer)? = nil) {
        self.metricsFactory = metricsFactory
        self.tracer = tracer
    }

    /// Neither metrics nor spans (the default).
    public static let disabled = Observability()

    /// Whether anything is recorded.
    public var isEnabled: Bool { metricsFactory != nil || tracer != nil }
}

// MARK: - Labels

/// Which side a metric describes: the first part of its label after `nghttp2.`.
enum ObservedRole: String, Sendable {
    case client, server
}

/// A request method as a bounded metric dimension: the nine methods of RFC 9110 §9.3 and PATCH, others `_OTHER`.
enum MethodLabel: Int, CaseIterable, Sendable {
    case get, head, post, put, delete, connect, options, trace, patch, other

    init(_ method: HTTPRequest.Method) {
        switch method {
        case .get: self = .get
        case .head: self = .head
        case .post: self = .post
        case .put: self = .put
        case .delete: self = .delete
        case .connect: self = .connect
        case .options: self = .options
        case .trace: self = .trace
        case .patch: self = .patch
        default: self = .other
        }
    }

    var name: String {
        switch self {
        case .get: "GET"
        case .head: "HEAD"
        case .post: "POST"
        case .put: "PUT"
        case .delete: "DELETE"
        case .connect: "CONNECT"
        case .options: "OPTIONS"
        case .trace: "TRACE"
        case .patch: "PATCH"
        case .other: "_OTHER"
        }
    }
}

/// `1xx` … `5xx`; a status outside 100...599 (never sent by a valid peer) counts as `5xx`.
func statusClass(_ status: HTTPResponse.Status) -> Int {
    min(max(status.code / 100, 1), 5)
}

/// Where a counted frame went.
enum MetricDirection: String, Sendable {
    case sent, received
}

// MARK: - Metric caches

/// Metric objects made on first use and kept: the hot path looks one up by index under an uncontended lock, and makes
/// nothing per request.
final class MetricSlots<Metric: Sendable>: Sendable {
    private let slots: LockedState<[Metric?]>
    private let make: @Sendable (Int) -> Metric

    init(count: Int, make: @escaping @Sendable (Int) -> Metric) {
        self.slots = LockedState(Array(repeating: nil, count: count))
        self.make = make
    }

    subscript(index: Int) -> Metric {
        slots.withLock { slots in
            if let metric = slots[index] { return metric }
            let metric = make(index)
            slots[index] = metric
            return metric
        }
    }

    /// How many were made (for tests).
    var madeCount: Int { slots.withLock { $0.reduce(0) { $0 + ($1 == nil ? 0 : 1) } } }
}

/// The metrics of one side's connections (``ConnectionHandler``), shared by all of them.
final class ConnectionMetrics: Sendable {
    let connectionsOpen: Meter
    let connectionsTotal: Counter
    let streamsOpen: Meter
    let bytesReceived: Counter
    let bytesSent: Counter
    /// RST_STREAM and GOAWAY by direction and code: index = ``slot(_:_:)``.
    private let resets: MetricSlots<Counter>
    private let goAways: MetricSlots<Counter>

    /// The codes of RFC 9113 §7 (0x0...0xd) get a slot each, the rest share one (`unknown`).
    private static let codeSlots = 15

    init(role: ObservedRole, factory: any MetricsFactory) {
        let prefix = "nghttp2.\(role.rawValue)."
        connectionsOpen = Meter(label: prefix + "connections.open", factory: factory)
        connectionsTotal = Counter(label: prefix + "connections.total", factory: factory)
        streamsOpen = Meter(label: prefix + "streams.open", factory: factory)
        bytesReceived = Counter(label: prefix + "bytes", dimensions: [("direction", "received")], factory: factory)
        bytesSent = Counter(label: prefix + "bytes", dimensions: [("direction", "sent")], factory: factory)
        func frameCounters(_ label: String) -> MetricSlots<Counter> {
            MetricSlots(count: 2 * Self.codeSlots) { index in
                let direction: MetricDirection = index < Self.codeSlots ? .sent : .received
                let raw = index % Self.codeSlots
                let code = raw < Self.codeSlots - 1 ? ErrorCode(rawValue: UInt32(raw)).message : "unknown"
                return Counter(label: prefix + label, dimensions: [("direction", direction.rawValue), ("error_code", code)], factory: factory)
            }
        }
        resets = frameCounters("rst_stream")
        goAways = frameCounters("goaway")
    }

    private static func slot(_ direction: MetricDirection, _ code: ErrorCode) -> Int {
        let raw = code.rawValue < UInt32(codeSlots - 1) ? Int(code.rawValue) : codeSlots - 1
        return (direction == .sent ? 0 : codeSlots) + raw
    }

    func connectionOpened() {
        connectionsOpen.increment()
        connectionsTotal.increment()
    }

    func connectionClosed() {
        connectionsOpen.decrement()
    }

    func streamOpened() {
        streamsOpen.increment()
    }

    func streamsClosed(_ count: Int) {
        streamsOpen.decrement(by: Double(count))
    }

    func received(_ bytes: Int) {
        bytesReceived.increment(by: bytes)
    }

    func sent(_ bytes: Int) {
        bytesSent.increment(by: bytes)
    }

    func rstStream(_ direction: MetricDirection, _ code: ErrorCode) {
        resets[Self.slot(direction, code)].increment()
    }

    func goAway(_ direction: MetricDirection, _ code: ErrorCode) {
        goAways[Self.slot(direction, code)].increment()
    }
}

/// The request metrics of one client or server: by method and status class, made on first use.
final class RequestMetrics: Sendable {
    struct ByStatus: Sendable {
        let requests: Counter
        let duration: Timer
    }

    private let byStatus: MetricSlots<ByStatus>
    private let errors: MetricSlots<Counter>
    /// `error.type` values, each with a slot in ``errors`` (an error of another type counts as `_OTHER`).
    static let errorTypes = [
        "cancelled", "notProcessed", "streamReset", "connectionClosed", "protocolViolation", "timeout", "tls",
        "redirect", "_OTHER",
    ]

    init(role: ObservedRole, factory: any MetricsFactory) {
        let prefix = "nghttp2.\(role.rawValue)."
        let methods = MethodLabel.allCases.count
        byStatus = MetricSlots(count: methods * 5) { index in
            let dimensions = [
                ("http.request.method", MethodLabel(rawValue: index / 5)!.name),
                ("http.response.status_class", "\(index % 5 + 1)xx"),
            ]
            return ByStatus(
                requests: Counter(label: prefix + "requests", dimensions: dimensions, factory: factory),
                duration: Timer(label: prefix + "request.duration", dimensions: dimensions, preferredDisplayUnit: .seconds, factory: factory)
            )
        }
        let types = Self.errorTypes
        errors = MetricSlots(count: methods * types.count) { index in
            Counter(
                label: prefix + "request.errors",
                dimensions: [("http.request.method", MethodLabel(rawValue: index / types.count)!.name), ("error.type", types[index % types.count])],
                factory: factory
            )
        }
    }

    /// How many request metric objects were made so far (for tests: they are made on first use).
    var madeCount: Int { byStatus.madeCount + errors.madeCount }

    /// A request answered with `status` after `nanoseconds`.
    func completed(_ method: MethodLabel, status: HTTPResponse.Status, nanoseconds: UInt64) {
        let metrics = byStatus[method.rawValue * 5 + statusClass(status) - 1]
        metrics.requests.increment()
        metrics.duration.recordNanoseconds(Int64(clamping: nanoseconds))
    }

    /// A request that failed with `error` (and, on a client, got no response).
    func failed(_ method: MethodLabel, error: any Error) {
        let type = Self.errorType(error)
        errors[method.rawValue * Self.errorTypes.count + (Self.errorTypes.firstIndex(of: type) ?? Self.errorTypes.count - 1)].increment()
    }

    /// A bounded name for `error`, for the `error.type` dimension and span attribute.
    static func errorType(_ error: any Error) -> String {
        switch error {
        case is CancellationError: return "cancelled"
        case is TLSError: return "tls"
        case let error as HTTP2Error:
            switch error.code {
            case .notProcessed: return "notProcessed"
            case .streamReset: return "streamReset"
            case .connectionClosed, .sessionClosed, .keepAliveTimeout, .idleTimeout: return "connectionClosed"
            case .protocolViolation, .malformedMessage: return "protocolViolation"
            case .connectTimeout, .requestTimeout, .readTimeout: return "timeout"
            case .tooManyRedirects, .redirectLoop: return "redirect"
            default: return "_OTHER"
            }
        default: return "_OTHER"
        }
    }
}

// MARK: - Trace context propagation

/// Reads a trace context (e.g. `traceparent`, `tracestate`) from request headers.
struct HTTPFieldsExtractor: Extractor {
    func extract(key: String, from fields: HTTPFields) -> String? {
        guard let name = HTTPField.Name(key) else { return nil }
        return fields[name]
    }
}

/// Writes a trace context into request headers, replacing what the application set under the same names.
struct HTTPFieldsInjector: Injector {
    func inject(_ value: String, forKey key: String, into fields: inout HTTPFields) {
        guard let name = HTTPField.Name(key) else { return }
        fields[name] = value
    }
}

/// The nanoseconds of the monotonic clock (what request durations are measured with).
@inline(__always)
func monotonicNanoseconds() -> UInt64 {
    NIODeadline.now().uptimeNanoseconds
}

// MARK: - Span attributes

extension HTTPRequest {
    /// OpenTelemetry's HTTP request attributes common to client and server spans: `http.request.method` (with
    /// `http.request.method_original` for a method counted as `_OTHER`), `url.scheme`, `server.address`,
    /// `server.port` (from `:authority`) and `network.protocol.version`.
    func setCommonSpanAttributes(_ attributes: inout SpanAttributes, method label: MethodLabel) {
        attributes["http.request.method"] = label.name
        if label == .other { attributes["http.request.method_original"] = method.rawValue }
        if let scheme { attributes["url.scheme"] = scheme }
        if let origin = try? OriginPool.Origin(self) {
            attributes["server.address"] = origin.host
            attributes["server.port"] = origin.port
        }
        attributes["network.protocol.version"] = "2"
        if let userAgent = headerFields[.userAgent] { attributes["user_agent.original"] = userAgent }
    }

    /// `:path` split at `?`: `url.path` and `url.query`.
    var pathAndQuery: (path: Substring, query: Substring?) {
        let path = self.path.map { Substring($0) } ?? "/"
        guard let question = path.firstIndex(of: "?") else { return (path, nil) }
        return (path[..<question], path[path.index(after: question)...])
    }
}

extension Span {
    /// `http.response.status_code`, and an error status for `minimumErrorCode` and above (500 on a server, 400 on
    /// a client, as OpenTelemetry says), with `error.type` set to the code.
    func setResponseStatus(_ status: HTTPResponse.Status, minimumErrorCode: Int) {
        updateAttributes { attributes in
            attributes["http.response.status_code"] = status.code
            if status.code >= minimumErrorCode { attributes["error.type"] = "\(status.code)" }
        }
        if status.code >= minimumErrorCode { setStatus(SpanStatus(code: .error)) }
    }

    /// Records a failure without a response: the error, `error.type` and an error status.
    func setFailure(_ error: any Error) {
        recordError(error)
        attributes["error.type"] = RequestMetrics.errorType(error)
        setStatus(SpanStatus(code: .error))
    }
}
