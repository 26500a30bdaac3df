public import HTTPTypes
public import NGHTTP2Async
public import OpenAPIRuntime
import NIOConcurrencyHelpers

/// A swift-openapi-runtime `ServerTransport` for `ServerSession`: a router that the generated
/// `registerHandlers(on:serverURL:)` fills, and whose ``handler`` serves a `ServerSession`.
///
/// ```swift
/// let transport = ServerSessionTransport()
/// try MyAPI().registerHandlers(on: transport, serverURL: try Servers.Server1.url())
/// let server = try await ServerSession.bind(port: 8443, configuration: configuration, handler: transport.handler)
/// try await server.run()
/// ```
///
/// Routes are OpenAPI path templates (`/items/{id}`): a `{name}` component matches one non-empty path component,
/// which is handed to the operation (still percent-encoded; the generated code decodes it) in
/// `ServerRequestMetadata.pathParameters`. A literal component beats a parameter where both match. A path no route
/// matches gets 404; a path that matches only with other methods gets 405 with `allow`.
///
/// Bodies stay streamed: the request `HTTPBody` reads the request's `StreamReader` as the operation iterates it
/// (so the receive window is credited only as bytes are taken), and the response `HTTPBody` is written chunk by chunk
/// as flow control allows. An operation that throws an error conforming to `HTTPResponseConvertible` (the runtime's
/// `ServerError` does: 400 for a request it could not decode) gets that status, headers and body; any other error
/// becomes 500 with no detail.
///
/// Handlers may be registered while the server runs; each request sees the routes as they were when it arrived.
public final class ServerSessionTransport: ServerTransport, Sendable {
    /// The type of an operation handler, as the generated code registers it.
    public typealias OperationHandler =
        @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?)

    private let routes = NIOLockedValueBox(Router())

    /// An empty router.
    public init() {}

    /// Registers `handler` for `method` requests whose path matches the OpenAPI template `path`.
    ///
    /// - Throws: ``ServerSessionTransportError`` when `path` does not start with `/`, has an empty or unterminated
    ///   `{…}`, or is already registered for `method` (a second registration would never be reached).
    public func register(
        _ handler: @escaping OperationHandler,
        method: HTTPRequest.Method,
        path: String
    ) throws {
        let template = try PathTemplate(path)
        try routes.withLockedValue { router in
            guard !router.routes.contains(where: { $0.method == method && $0.template == template }) else {
                throw ServerSessionTransportError(message: "\(method) \(path) is registered twice")
            }
            router.routes.append(Route(method: method, template: template, handler: handler))
        }
    }

    /// The closure to pass to `ServerSession/bind(host:port:configuration:eventLoopGroup:handler:)`:
    /// it routes each request to its operation (see ``handle(_:)``).
    public var handler: ServerSession.Handler {
        { [self] request in await self.handle(request) }
    }

    /// Routes one request: to its operation (converting the request and response), or to 404 / 405.
    ///
    /// A failing operation's error becomes the response (see the type's documentation); an error while the response
    /// body streams resets the stream, as for any `ServerSession` handler.
    public func handle(_ request: ServerSession.Request) async -> ServerSession.Response {
        let fullPath = request.path
        let path = fullPath.firstIndex(where: { $0 == "?" || $0 == "#" }).map { fullPath[..<$0] } ?? Substring(fullPath)
        let components = PathTemplate.split(path)
        let match = routes.withLockedValue { $0.match(method: request.method, components: components) }
        switch match {
        case .notFound:
            request.body.cancel()
            return ServerSession.Response(status: .notFound, headers: [.contentType: "text/plain"], body: .text("not found\n"))
        case .methodNotAllowed(let allowed):
            request.body.cancel()
            var headers: HTTPFields = [.contentType: "text/plain"]
            headers[.allow] = allowed.map(\.rawValue).joined(separator: ", ")
            return ServerSession.Response(status: .methodNotAllowed, headers: headers, body: .text("method not allowed\n"))
        case .found(let handler, let parameters):
            let length: HTTPBody.Length = request.contentLength.map { .known(Int64($0)) } ?? .unknown
            let body = HTTPBody(StreamReaderChunks(reader: request.body), length: length, iterationBehavior: .single)
            let metadata = ServerRequestMetadata(pathParameters: parameters)
            do {
                let (head, responseBody) = try await handler(request.head, body, metadata)
                return Self.makeResponse(head, body: responseBody, method: request.method)
            } catch let error as any HTTPResponseConvertible {
                let head = HTTPResponse(status: error.httpStatus, headerFields: error.httpHeaderFields)
                return Self.makeResponse(head, body: error.httpBody, method: request.method)
            } catch {
                return ServerSession.Response(status: .internalServerError, headers: [.contentLength: "0"])
            }
        }
    }

    /// The response with its body streamed; a known length becomes `content-length` unless the head has one.
    static func makeResponse(_ head: HTTPResponse, body: HTTPBody?, method: HTTPRequest.Method) -> ServerSession.Response {
        var head = head
        guard let body, method != .head else { return ServerSession.Response(head) }
        if case .known(let length) = body.length {
            if length == 0 { return ServerSession.Response(head) }
            if head.headerFields[.contentLength] == nil { head.headerFields[.contentLength] = String(length) }
        }
        return ServerSession.Response(head, body: .writer { writer in
            for try await chunk in body { try await writer.write(chunk) }
        })
    }
}

/// An OpenAPI path template that ``ServerSessionTransport/register(_:method:path:)`` could not take.
public struct ServerSessionTransportError: Error, CustomStringConvertible, Sendable {
    /// What is wrong, with the path.
    public var message: String

    /// The message, for logs.
    public var description: String { "ServerSessionTransport: \(message)" }
}

/// One registered operation.
private struct Route: Sendable {
    var method: HTTPRequest.Method
    var template: PathTemplate
    var handler: ServerSessionTransport.OperationHandler
}

/// The routes and the matching of a request's path components against them.
private struct Router: Sendable {
    var routes: [Route] = []

    enum Match {
        case found(ServerSessionTransport.OperationHandler, parameters: [String: Substring])
        case methodNotAllowed([HTTPRequest.Method])
        case notFound
    }

    func match(method: HTTPRequest.Method, components: [Substring]) -> Match {
        var best: (route: Route, parameters: [String: Substring], literals: Int)?
        var allowed: [HTTPRequest.Method] = []
        for route in routes {
            guard let (parameters, literals) = route.template.match(components) else { continue }
            guard route.method == method else {
                if !allowed.contains(route.method) { allowed.append(route.method) }
                continue
            }
            if best == nil || literals > best!.literals || (literals == best!.literals && route.template.prefersOver(best!.route.template)) {
                best = (route, parameters, literals)
            }
        }
        if let best { return .found(best.route.handler, parameters: best.parameters) }
        return allowed.isEmpty ? .notFound : .methodNotAllowed(allowed)
    }
}

/// `/items/{id}/parts`: literal components and `{name}` parameters, each matching one path component.
struct PathTemplate: Hashable, Sendable {
    enum Component: Hashable, Sendable {
        case literal(String)
        case parameter(String)
    }

    var components: [Component]

    init(_ path: String) throws {
        guard path.hasPrefix("/") else { throw ServerSessionTransportError(message: "path '\(path)' does not start with '/'") }
        components = try Self.split(Substring(path)).map { (component) throws -> Component in
            if component.hasPrefix("{") {
                guard component.hasSuffix("}"), component.count > 2 else {
                    throw ServerSessionTransportError(message: "path component '\(component)' is not '{name}'")
                }
                return .parameter(String(component.dropFirst().dropLast()))
            }
            guard !component.contains("{"), !component.contains("}") else {
                throw ServerSessionTransportError(message: "path component '\(component)' mixes a literal and a parameter")
            }
            return .literal(String(component))
        }
    }

    /// A path's components: split on `/`, the empty ones (leading, trailing, doubled `/`) left out.
    static func split(_ path: Substring) -> [Substring] {
        path.split(separator: "/", omittingEmptySubsequences: true)
    }

    /// The parameters and the number of literal components, when `path` matches.
    func match(_ path: [Substring]) -> (parameters: [String: Substring], literals: Int)? {
        guard path.count == components.count else { return nil }
        var parameters: [String: Substring] = [:]
        var literals = 0
        for (component, value) in zip(components, path) {
            switch component {
            case .literal(let literal):
                guard value == literal else { return nil }
                literals += 1
            case .parameter(let name):
                parameters[name] = value
            }
        }
        return (parameters, literals)
    }

    /// Between two templates with as many literals: the one whose first literal comes earlier
    /// (`/a/{x}` over `/{y}/b`).
    func prefersOver(_ other: PathTemplate) -> Bool {
        for (mine, theirs) in zip(components, other.components) {
            switch (mine, theirs) {
            case (.literal, .parameter): return true
            case (.parameter, .literal): return false
            default: continue
            }
        }
        return false
    }
}
