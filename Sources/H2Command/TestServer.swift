import CompressNIO
import Foundation
import HTTPTypes
import NGHTTP2Async
import NIOCore

/// The handler of `h2 serve`: static files from a directory, plus httpbin-style endpoints for testing clients.
///
/// | path | answer |
/// |---|---|
/// | `/get`, `/post`, `/put`, `/patch`, `/delete`, `/anything[/…]` | the request as JSON: method, url, path, args, headers, data, json |
/// | `/headers` | the request's header fields as JSON |
/// | `/status/{code}` | an empty response with that status |
/// | `/bytes/{n}` | n pseudo-random bytes (`?seed=` picks them) |
/// | `/stream-bytes/{n}?chunk_size=` | the same, streamed in chunks |
/// | `/delay/{seconds}` | the request as JSON, after a delay (at most 10 s) |
/// | `/echo` | the request body, streamed back as it arrives |
/// | `/discard` | reads the request body, keeps none of it, and answers its length as JSON (for upload tests) |
/// | `/trailers` | a small body followed by trailers |
/// | `/gzip` | JSON, gzip-encoded |
/// | `/deflate` | JSON, deflate-encoded (the zlib format, RFC 1950, as httpbin) |
/// | `/redirect/{n}` | 302 to `/redirect/{n-1}`; `/redirect/1` to `/get` (relative `location`) |
/// | `/absolute-redirect/{n}` | the same with absolute URLs (`scheme://authority/…`, from the request) |
/// | `/redirect-to?url=U&status_code=C` | a redirect to U with status C (default 302; only 3xx, else 400) |
struct TestServer: Sendable {
    let directory: String?
    private let cache = FileCache()

    init(directory: String?) {
        self.directory = directory
    }

    /// The first path segments that name an endpoint; any other path is a file.
    private static let endpoints: Set<Substring> = [
        "get", "post", "put", "patch", "delete", "anything", "headers", "status", "bytes", "stream-bytes", "delay", "echo",
        "discard", "trailers", "gzip", "deflate", "redirect", "absolute-redirect", "redirect-to",
    ]

    func handle(_ request: ServerSession.Request) async throws -> ServerSession.Response {
        let (path, query) = split(request.path)
        guard Self.isEndpoint(path) else { return try await file(path, request: request) }
        let segments = path.split(separator: "/").map(String.init)
        let body = Self.describesBody(segments, method: request.method) ? try await request.bytes(upTo: 16 << 20) : []
        if let answer = try answer(request, path: path, query: query, segments: segments, body: body) { return answer }
        switch segments.first {
        case "stream-bytes" where segments.count == 2:
            guard let count = Int(segments[1]), count >= 0 else { return ServerSession.Response(status: .badRequest) }
            let chunkSize = max(1, Int(query["chunk_size"] ?? "") ?? 10 * 1024)
            let seed = UInt64(query["seed"] ?? "") ?? 1
            return ServerSession.Response(headers: [.contentType: "application/octet-stream"], body: .writer { writer in
                let all = Self.bytes(count, seed: seed)
                var offset = 0
                while offset < count {
                    let end = min(offset + chunkSize, count)
                    try await writer.write(all[offset..<end])
                    offset = end
                }
            })
        case "delay" where segments.count == 2:
            let seconds = min(Double(segments[1]) ?? 0, 10)
            try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
            return json(describe(request, path: path, query: query, body: nil))
        case "echo":
            var headers = HTTPFields()
            if let type = request.contentType { headers[.contentType] = type }
            return ServerSession.Response(headers: headers, body: .stream(request.body))
        case "discard" where segments.count == 1:
            var received = 0
            for try await chunk in request.body { received += chunk.readableBytes }
            return json(["bytes": received])
        case "bytes" where segments.count == 2:
            guard let count = Int(segments[1]), (0...(512 << 20)).contains(count) else { return ServerSession.Response(status: .badRequest) }
            let seed = UInt64(query["seed"] ?? "") ?? 1
            return ServerSession.Response(headers: [.contentType: "application/octet-stream", .contentLength: "\(count)"], body: .bytes(Self.bytes(count, seed: seed)))
        default:
            return try await file(path, request: request)
        }
    }

    /// The answer to a request for an endpoint that needs nothing to wait for, when the request has no body left to
    /// read (END_STREAM on its HEADERS): `/get`, `/headers`, `/status/…`, the redirects, `/gzip`, `/deflate`, and
    /// `/post` and the like without a body. `nil` for anything else. `h2 serve`'s immediate handler, on the event
    /// loop, with no task per request.
    func endpointAtOnce(_ request: ServerSession.Request) -> ServerSession.Response? {
        guard request.body.isFinished else { return nil }
        let (path, query) = split(request.path)
        guard Self.isEndpoint(path) else { return nil }
        return try? answer(request, path: path, query: query, segments: path.split(separator: "/").map(String.init), body: [])
    }

    /// Whether the endpoint answers with the request's body in its JSON (which is read whole first): `/anything…`,
    /// and `/get`, `/post`, `/put`, `/patch`, `/delete` asked with their own method.
    private static func describesBody(_ segments: [String], method: HTTPRequest.Method) -> Bool {
        guard let first = segments.first else { return false }
        if first == "anything" { return true }
        return segments.count == 1 && ["get", "post", "put", "patch", "delete"].contains(first) && first == method.rawValue.lowercased()
    }

    /// The answer of an endpoint that needs only the request and its `body` (read whole, for those that describe it),
    /// or `nil` for the others: they stream, wait or read the body themselves.
    private func answer(
        _ request: ServerSession.Request, path: String, query: [String: String], segments: [String], body: [UInt8]
    ) throws -> ServerSession.Response? {
        switch segments.first {
        case "get" where segments.count == 1 && request.method == .get,
            "post" where segments.count == 1 && request.method == .post,
            "put" where segments.count == 1 && request.method == .put,
            "patch" where segments.count == 1 && request.method == .patch,
            "delete" where segments.count == 1 && request.method == .delete,
            "anything":
            return json(describe(request, path: path, query: query, body: body))
        case "get", "post", "put", "patch", "delete":
            return ServerSession.Response(status: .methodNotAllowed, headers: [.allow: segments[0].uppercased()])
        case "headers":
            return json(["headers": headerObject(request.headers)])
        case "status" where segments.count == 2:
            guard let code = Int(segments[1]), (200...599).contains(code) else { return ServerSession.Response(status: .badRequest) }
            return ServerSession.Response(status: HTTPResponse.Status(code: code))
        case "trailers":
            return ServerSession.Response(
                headers: [.contentType: "text/plain", HTTPField.Name("trailer")!: "x-checksum, x-served-by"],
                body: .bytes(ByteBuffer(string: "a body, then trailers\n"), trailers: [HTTPField.Name("x-checksum")!: "d41d8cd9", HTTPField.Name("x-served-by")!: "h2"])
            )
        case "gzip":
            var object = describe(request, path: path, query: query, body: nil)
            object["gzipped"] = true
            var plain = ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
            let compressed = try plain.compress(with: .gzip())
            return ServerSession.Response(headers: [.contentType: "application/json", .contentEncoding: "gzip"], body: .bytes(compressed))
        case "deflate" where segments.count == 1:
            var object = describe(request, path: path, query: query, body: nil)
            object["deflated"] = true
            var plain = ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
            let compressed = try plain.compress(with: .zlib())
            return ServerSession.Response(headers: [.contentType: "application/json", .contentEncoding: "deflate"], body: .bytes(compressed))
        case "redirect" where segments.count == 2, "absolute-redirect" where segments.count == 2:
            guard let count = Int(segments[1]), count >= 1 else { return ServerSession.Response(status: .badRequest) }
            let next = count == 1 ? "/get" : "/\(segments[0])/\(count - 1)"
            let location = segments[0] == "redirect" ? next : "\(request.scheme ?? "http")://\(authority(of: request))\(next)"
            return ServerSession.Response(status: .found, headers: [.location: location])
        case "redirect-to" where segments.count == 1:
            let status = query["status_code"].map { Int($0) ?? 0 } ?? 302
            guard let url = query["url"], !url.isEmpty, (300...399).contains(status) else {
                return ServerSession.Response(status: .badRequest)
            }
            return ServerSession.Response(status: HTTPResponse.Status(code: status), headers: [.location: url])
        default:
            return nil
        }
    }

    /// The answer to a GET or HEAD of a small file read before and unchanged on disk since (one `stat`), or `nil`
    /// when answering needs more: `h2 serve`'s immediate handler, on the event loop, with no task per request.
    ///
    /// Requests for one path that one read brought share one `stat` (see ``FileCache``).
    func cachedFile(_ request: ServerSession.Request) -> ServerSession.Response? {
        let path = request.path
        guard request.method == .get || request.method == .head, !path.utf8.contains(UInt8(ascii: "?")) else { return nil }
        if let cached = cache.checkedEntry(path: path, receivedAt: request.receivedAt) { return cached.response(to: request.method) }
        let checkedAt = ContinuousClock.now  // before the stat: what it finds held at this instant
        guard !Self.isEndpoint(path), case .file(let fullPath, let status) = locate(path),
            let cached = cache.lookup(fullPath, status)
        else { return nil }
        cache.noteChecked(path: path, entry: cached, at: checkedAt)
        return cached.response(to: request.method)
    }

    /// Whether `path` is one of the test endpoints (its first segment is in ``endpoints``).
    private static func isEndpoint(_ path: String) -> Bool {
        let first = path.utf8.dropFirst().split(separator: UInt8(ascii: "/"), maxSplits: 1, omittingEmptySubsequences: false).first
        return first.map { endpoints.contains(Substring($0)) } ?? false
    }

    private enum Located {
        case file(String, stat)
        case forbidden
        case notFound
    }

    /// The regular file `path` names in the served directory (a directory's `index.html`), with its `stat`.
    private func locate(_ path: String) -> Located {
        guard let directory else { return .notFound }
        let decoded = path.utf8.contains(UInt8(ascii: "%")) ? (path.removingPercentEncoding ?? path) : path
        guard !Self.hasParentSegment(decoded) else { return .forbidden }
        var fullPath = decoded.hasPrefix("/") ? directory + decoded : directory + "/" + decoded
        var status = stat()
        guard stat(fullPath, &status) == 0 else { return .notFound }
        if status.st_mode & S_IFMT == S_IFDIR {
            fullPath += fullPath.hasSuffix("/") ? "index.html" : "/index.html"
            guard stat(fullPath, &status) == 0 else { return .notFound }
        }
        guard status.st_mode & S_IFMT == S_IFREG else { return .notFound }
        return .file(fullPath, status)
    }

    private func file(_ path: String, request: ServerSession.Request) async throws -> ServerSession.Response {
        guard request.method == .get || request.method == .head else { return ServerSession.Response(status: .notFound) }
        var (fullPath, status) = ("", stat())
        switch locate(path) {
        case .file(let located, let locatedStatus): (fullPath, status) = (located, locatedStatus)
        case .forbidden: return ServerSession.Response(status: .forbidden)
        case .notFound: return ServerSession.Response(status: .notFound)
        }
        if let cached = cache.lookup(fullPath, status) { return cached.response(to: request.method) }
        let descriptor = open(fullPath, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return ServerSession.Response(status: .notFound) }
        guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
            close(descriptor)
            return ServerSession.Response(status: .notFound)
        }
        let size = Int(status.st_size)
        let headers: HTTPFields = [.contentType: Self.contentType(of: fullPath), .contentLength: "\(size)"]
        if request.method == .head {
            close(descriptor)
            return ServerSession.Response(headers: headers)
        }
        if size <= FileCache.fileLimit {
            // A small file is read at once, sent as one buffer (no writer task) and kept for the next request.
            defer { close(descriptor) }
            var contents = ByteBuffer()
            guard try FileIO.read(descriptor, into: &contents, upTo: size) == size else { throw POSIXError(.EIO) }
            cache.insert(fullPath, status, contents: contents, headers: headers)
            return ServerSession.Response(headers: headers, body: .bytes(contents))
        }
        return ServerSession.Response(headers: headers, body: .writer { writer in
            defer { close(descriptor) }
            while true {
                var chunk = ByteBuffer()
                guard try FileIO.read(descriptor, into: &chunk, upTo: 256 << 10) > 0 else { return }
                try await writer.write(chunk)
            }
        })
    }

    /// Whether `path` has a `..` segment (which would leave the served directory).
    private static func hasParentSegment(_ path: String) -> Bool {
        var dots = 0
        var segmentStart = true
        for byte in path.utf8 {
            if byte == UInt8(ascii: "/") {
                if dots == 2 { return true }
                (dots, segmentStart) = (0, true)
            } else if byte == UInt8(ascii: "."), segmentStart || dots > 0 {
                dots += 1
                segmentStart = false
            } else {
                (dots, segmentStart) = (-1, false)
            }
        }
        return dots == 2
    }

    private func json(_ object: [String: Any]) -> ServerSession.Response {
        var text = JSONText.data(object)
        text.append(UInt8(ascii: "\n"))
        return ServerSession.Response(headers: [.contentType: "application/json"], body: .bytes(ByteBuffer(bytes: text)))
    }

    /// The request as httpbin describes it; with `data` and `json` from `body` when there is one.
    private func describe(_ request: ServerSession.Request, path: String, query: [String: String], body: [UInt8]?) -> [String: Any] {
        var object: [String: Any] = [
            "method": request.method.rawValue,
            "path": path,
            "url": "\(request.scheme ?? "http")://\(request.authority ?? "")\(request.path)",
            "args": query,
            "headers": headerObject(request.headers),
            "origin": request.remoteAddress?.ipAddress ?? "",
        ]
        if let body {
            object["data"] = String(decoding: body, as: UTF8.self)
            object["json"] = body.isEmpty ? NSNull() : (try? JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed])) ?? NSNull()
        }
        return object
    }

    /// The request's `:authority` (or `host`), for absolute URLs back to this server.
    private func authority(of request: ServerSession.Request) -> String {
        request.authority ?? request.headers[HTTPField.Name("host")!] ?? "localhost"
    }

    private func headerObject(_ fields: HTTPFields) -> [String: String] {
        var result: [String: String] = [:]
        for field in fields {
            let name = field.name.canonicalName
            result[name] = result[name].map { "\($0), \(field.value)" } ?? field.value
        }
        return result
    }

    private func split(_ target: String) -> (String, [String: String]) {
        guard let mark = target.firstIndex(of: "?") else { return (target, [:]) }
        var query: [String: String] = [:]
        for pair in target[target.index(after: mark)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? String($0) }
            query[parts[0]] = parts.count > 1 ? parts[1] : ""
        }
        return (String(target[..<mark]), query)
    }

    /// Deterministic pseudo-random bytes.
    static func bytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed &+ 0x9E37_79B9_7F4A_7C15
        var result = [UInt8](repeating: 0, count: count)
        for index in 0..<count {
            if index % 8 == 0 {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            }
            result[index] = UInt8(truncatingIfNeeded: state >> (8 * UInt64(index % 8)))
        }
        return result
    }

    static func contentType(of path: String) -> String {
        switch (path as NSString).pathExtension.lowercased() {
        case "html", "htm": "text/html; charset=utf-8"
        case "txt", "md": "text/plain; charset=utf-8"
        case "json": "application/json"
        case "css": "text/css"
        case "js": "text/javascript"
        case "png": "image/png"
        case "jpg", "jpeg": "image/jpeg"
        case "gif": "image/gif"
        case "svg": "image/svg+xml"
        case "pdf": "application/pdf"
        case "wasm": "application/wasm"
        default: "application/octet-stream"
        }
    }
}
