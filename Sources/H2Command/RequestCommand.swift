#if CLI
import ArgumentParser
import Foundation
import HTTPTypes
import Logging
import NGHTTP2
import NGHTTP2Async
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// `h2 [METHOD] URL [ITEM ...]`: one request, the response body to stdout.
struct RequestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "request",
        abstract: "Send one request and print the response body (the default command)."
    )

    @Argument(help: "[METHOD] URL [ITEM ...] — METHOD defaults to GET, or POST when there is a body.")
    var words: [String]

    @Flag(name: .shortAndLong, help: "Print every frame sent and received to stderr, like nghttp -v.")
    var verbose = false

    @Flag(help: "Log connection events (debug level) to stderr.")
    var debug = false

    @Option(name: .shortAndLong, help: "Write the body to this file (with a progress bar on a terminal).")
    var output: String?

    @Flag(name: [.customShort("I"), .long], help: "Print only the response head.")
    var head = false

    @Flag(help: "Exit with 3, 4 or 5 for a 3xx, 4xx or 5xx response.")
    var checkStatus = false

    @Option(help: "Give up after this many seconds.")
    var timeout: Double?

    @Flag(help: "Do not read a request body from stdin.")
    var ignoreStdin = false

    @Flag(name: [.customShort("F"), .long], help: "Follow redirects (301, 302, 303, 307, 308), up to --max-redirects; with -v every hop's frames are shown.")
    var follow = false

    @Option(help: "The most redirects --follow follows (default 30, as HTTPie's).")
    var maxRedirects: Int?

    @Flag(
        help: """
            Do not decode compressed bodies. By default `accept-encoding: gzip, deflate` is sent and a gzip or \
            deflate body is decoded as it is read (unlike curl, which needs --compressed): `h2 :8080/gzip` and \
            `/deflate` of `h2 serve` print plain JSON. With this flag no accept-encoding is added and the body is \
            printed as received.
            """
    )
    var noDecompress = false

    @Flag(help: "Accept server pushes (SETTINGS_ENABLE_PUSH = 1): each pushed response is read and summed up on stderr.")
    var acceptPush = false

    @Option(help: "Go through this forward proxy (an HTTP/1.1 CONNECT tunnel), e.g. http://user:pass@127.0.0.1:3128.")
    var proxy: String?

    @Flag(name: .customLong("http1.1"), help: "Speak HTTP/1.1 only (cleartext, and ALPN http/1.1 over TLS), as curl --http1.1.")
    var http1 = false

    @Flag(name: .customLong("http2-only"), help: "Speak HTTP/2 only: over TLS offer ALPN h2 alone (by default http/1.1 is offered too).")
    var http2Only = false

    @Flag(
        name: [.customShort("u"), .long],
        help: "For http:// URLs: start in HTTP/1.1 and ask to upgrade to HTTP/2 (h2c, RFC 7540 §3.2), as nghttp -u and curl --http2."
    )
    var upgrade = false

    @Flag(help: "Take the proxy from https_proxy, http_proxy and no_proxy (as curl does) when --proxy is not given.")
    var proxyFromEnvironment = false

    @OptionGroup var tls: ClientTLSOptions

    func validate() throws {
        if let maxRedirects {
            guard maxRedirects >= 0 else { throw ValidationError("--max-redirects must be 0 or more") }
            guard follow else { throw ValidationError("--max-redirects goes with --follow") }
        }
        if [http1, http2Only, upgrade].filter({ $0 }).count > 1 {
            throw ValidationError("--http1.1, --http2-only and --upgrade exclude each other")
        }
    }

    func run() async throws {
        let invocation: Invocation
        do {
            invocation = try Invocation(words: words, stdin: ignoreStdin ? nil : readStandardInput())
        } catch {
            printError("h2: \(error)")
            throw ExitCode(1)
        }
        let exit: Int32
        if let timeout {
            exit = try await withThrowingTaskGroup(of: Int32.self) { group in
                group.addTask { try await perform(invocation) }
                group.addTask {
                    // A backstop: the client's own request timeout (the same) normally ends the request first.
                    try await Task.sleep(for: .seconds(timeout + 0.5))
                    printError("h2: timed out after \(timeout) seconds")
                    return 2
                }
                let first = try await group.next()!
                group.cancelAll()
                return first
            }
        } else {
            exit = try await perform(invocation)
        }
        if exit != 0 { throw ExitCode(exit) }
    }

    /// The client's configuration from the command line: TLS (for every `https` origin, redirects included),
    /// timeouts, redirects, decompression, frame printing.
    private func clientConfiguration(start: ContinuousClock.Instant, pushes: PushReceiver?) throws -> HTTP2Client.Configuration {
        var configuration = HTTP2Client.Configuration()
        configuration.maxConnectionsPerOrigin = 1
        if debug { configuration.connection.logger.logLevel = .debug }
        configuration.connection.tls = try tls.configuration()
        if let timeout {
            configuration.timeout = .milliseconds(Int(timeout * 1000))
            configuration.connection.connectTimeout = min(configuration.connection.connectTimeout, .milliseconds(Int(timeout * 1000)))
        }
        if follow { configuration.redirects = .follow(maxRedirects: maxRedirects ?? 30) }
        configuration.httpVersion = http1 ? .http1Only : http2Only ? .http2Only : upgrade ? .h2cUpgrade : .automatic
        configuration.decompression = noDecompress ? .disabled : .enabled
        if let proxy { configuration.proxy = try HTTPProxy(url: proxy) }
        configuration.proxyFromEnvironment = proxyFromEnvironment
        let verbose = self.verbose
        if verbose || pushes != nil {
            configuration.connection.frameObserver = { direction, frame in
                if direction == .received, frame.type == .pushPromise { pushes?.promised() }
                guard verbose else { return }
                let elapsed = ContinuousClock.now - start
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                printError(String(format: "[%7.3f] ", seconds) + (direction == .sent ? "send " : "recv ") + frame.description)
            }
        }
        if let pushes { configuration.connection.pushHandler = { await pushes.receive($0) } }
        return configuration
    }

    private func perform(_ invocation: Invocation) async throws -> Int32 {
        let start = ContinuousClock.now
        // One event loop: the connection and the work that follows its responses share it, like nghttp's single
        // thread, so each chunk of the body (and of an upload) moves without a hop between threads.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let client: HTTP2Client
        let pushes = acceptPush ? PushReceiver() : nil
        do {
            client = HTTP2Client(configuration: try clientConfiguration(start: start, pushes: pushes), eventLoopGroup: group)
        } catch {
            printError("h2: \(describe(error, url: invocation.url))")
            try? await group.shutdownGracefully()
            return 1
        }
        let exit: Int32
        do {
            let response = try await withTaskExecutorPreference(EventLoopTaskExecutor(group.next())) {
                let response = try await client.execute(invocation.request, body: invocation.body)
                if head {
                    printHead(response.head)
                    response.body.cancel()
                } else {
                    try await writeBody(of: response)
                }
                return response
            }
            // The PUSH_PROMISEs came before the response's end (RFC 9113 §8.4.2): all are known, wait for their bodies.
            await pushes?.waitForAll(timeout: .seconds(timeout ?? 10))
            if verbose, let trailers = response.trailers, !trailers.isEmpty {
                printError("trailers:")
                for field in trailers { printError("  \(field.name): \(field.value)") }
            }
            switch response.status.kind {
            case .redirection where checkStatus: exit = 3
            case .clientError where checkStatus: exit = 4
            case .serverError where checkStatus: exit = 5
            default: exit = 0
            }
        } catch let error as HTTP2Error where error.code == .requestTimeout || (error.code == .connectTimeout && timeout != nil) {
            printError("h2: timed out after \(timeout.map { "\($0)" } ?? "?") seconds")
            exit = 2
        } catch {
            printError("h2: \(describe(error, url: invocation.url))")
            exit = 1
        }
        await client.shutdown()
        try? await group.shutdownGracefully()
        return exit
    }

    private func printHead(_ head: HTTPResponse) {
        var text = ":status: \(head.status.code)\n"
        for field in head.headerFields { text += "\(field.name): \(field.value)\n" }
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    private func writeBody(of response: HTTP2Client.Response) async throws {
        if let output {
            // open(2), not FileManager.createFile: that writes a new file and renames it over the path, which
            // would replace a device such as /dev/null with a regular file.
            let descriptor = open(output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            guard descriptor >= 0 else { throw CleanExit.message("h2: cannot write \(output)") }
            let file = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
            defer { try? file.close() }
            let progress = isatty(2) != 0 ? Progress(total: response.contentLength) : nil
            for try await chunk in response.body {
                try FileIO.write(chunk, to: descriptor)
                progress?.advance(by: chunk.readableBytes)
            }
            progress?.finish()
            return
        }
        let isJSON = response.contentType?.lowercased().contains("json") ?? false
        if isJSON, isatty(1) != 0 {
            let bytes = try await response.bytes()
            if let object = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]),
                let pretty = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed])
            {
                FileHandle.standardOutput.write(pretty + Data("\n".utf8))
            } else {
                FileHandle.standardOutput.write(Data(bytes))
            }
            return
        }
        for try await chunk in response.body {
            try FileIO.write(chunk, to: 1)
        }
    }
}

/// A parsed command line: the request to send.
struct Invocation {
    var url: String
    var request: HTTPRequest
    var body: MessageBody

    static let methods: Set<String> = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"]

    enum Error: Swift.Error, CustomStringConvertible {
        case missingURL
        case invalidURL(String)
        case unreadable(String)
        case invalidHeader(String)

        var description: String {
            switch self {
            case .missingURL: "a URL is needed: h2 [METHOD] URL [ITEM ...]"
            case .invalidURL(let url): "invalid URL '\(url)': use http://host[:port]/path or https://…"
            case .unreadable(let path): "cannot read \(path)"
            case .invalidHeader(let name): "invalid header name '\(name)'"
            }
        }
    }

    init(words: [String], stdin: Data?) throws {
        var words = words[...]
        var method: String?
        if let first = words.first, Self.methods.contains(first.uppercased()), words.count > 1 {
            method = first.uppercased()
            words = words.dropFirst()
        }
        guard let rawURL = words.first else { throw Error.missingURL }
        let url = rawURL.contains("://") ? rawURL : "http://" + (rawURL.hasPrefix(":") ? "127.0.0.1" + rawURL : rawURL)
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = components.host, !host.isEmpty
        else {
            throw Error.invalidURL(rawURL)
        }
        let items = try RequestItems(parsing: Array(words.dropFirst()))

        var fields = HTTPFields()
        fields[.userAgent] = "h2/\(LibraryVersion.current.string)"
        var body = MessageBody.empty
        if let file = items.bodyFile {
            var status = stat()
            guard access(file, R_OK) == 0, stat(file, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
                throw Error.unreadable(file)
            }
            fields[.contentLength] = "\(status.st_size)"
            body = Self.streaming(file)
        } else if let json = items.jsonBody {
            body = .text(json)
            fields[.contentType] = "application/json"
            fields[.accept] = "application/json, */*;q=0.5"
        } else if let stdin, !stdin.isEmpty {
            body = .bytes(Array(stdin))
        }
        for header in items.headers {
            guard let name = HTTPField.Name(header.name) else { throw Error.invalidHeader(header.name) }
            if fields[name] != nil { fields[name] = nil }
            fields.append(HTTPField(name: name, value: header.value))
        }
        let path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        let target = items.applyQuery(to: components.percentEncodedQuery.map { "\(path)?\($0)" } ?? path)
        let defaultMethod = body.isEmpty ? "GET" : "POST"
        let authority = components.port.map { "\(host):\($0)" } ?? host
        self.url = url
        self.request = HTTPRequest(
            method: HTTPRequest.Method(method ?? defaultMethod)!,
            scheme: scheme,
            authority: authority,
            path: target,
            headerFields: fields
        )
        self.body = body
    }
}

extension Invocation {
    /// A body read from `path` a chunk at a time as the flow-control window opens, so that a file of any size is
    /// sent without holding it in memory.
    static func streaming(_ path: String) -> MessageBody {
        .writer { writer in
            let descriptor = open(path, O_RDONLY)
            guard descriptor >= 0 else { throw Error.unreadable(path) }
            defer { close(descriptor) }
            while true {
                var chunk = ByteBuffer()
                guard try FileIO.read(descriptor, into: &chunk, upTo: 256 << 10) > 0 else { return }
                try await writer.write(chunk)
            }
        }
    }
}

/// Reads stdin when it is a pipe or a regular file — not a terminal, /dev/null or an inherited socket.
func readStandardInput() -> Data? {
    var status = stat()
    guard fstat(0, &status) == 0 else { return nil }
    let type = status.st_mode & S_IFMT
    guard type == S_IFIFO || type == S_IFREG else { return nil }
    return FileHandle.standardInput.readDataToEndOfFile()
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// A message a person can act on, for the errors a request can end with.
func describe(_ error: any Error, url: String) -> String {
    switch error {
    case let error as HTTP2Error where error.code == .streamReset:
        let (id, code) = (error.streamID ?? 0, error.errorCode ?? .noError)
        return "the stream (\(id)) was reset \(error.byPeer ? "by the server" : "locally") with \(code)"
    case let error as HTTP2Error where error.code == .peerSpeaksHTTP1:
        return "\(error) (try --http1.1)"
    case let error as HTTP2Error:
        return error.description
    case let error as TLSError:
        return "TLS: \(error)"
    case let error as NIOConnectionError:
        if error.dnsAAAAError != nil || error.dnsAError != nil, error.connectionErrors.isEmpty {
            return "unknown host in \(url)"
        }
        if let first = error.connectionErrors.first {
            let text = "\(first.error)"
            if text.contains("refused") || text.contains("ECONNREFUSED") || text.contains("111") {
                return "connection refused by \(first.target)"
            }
            return "cannot connect to \(first.target): \(first.error)"
        }
        return "cannot connect: \(error)"
    case let error as SocketAddressError:
        return "unknown host in \(url) (\(error))"
    case let error as IOError:
        return "I/O error: \(error)"
    default:
        return "\(error)"
    }
}

/// The TLS flags of the commands that connect: `--cacert`, `-k/--insecure`, `--cert`/`--key`.
/// `--accept-push`: reads every pushed response and prints a line for each on stderr.
final class PushReceiver: Sendable {
    private let counts = NIOLockedValueBox((promised: 0, done: 0))
    private let finished: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    init() {
        (finished, continuation) = AsyncStream.makeStream(of: Void.self)
    }

    /// A PUSH_PROMISE arrived (seen on the event loop, before the push handler's task runs).
    func promised() { counts.withLockedValue { $0.promised += 1 } }

    func receive(_ push: ClientSession.PushPromise) async {
        let path = push.request.path ?? "/"
        do {
            let response = try await push.response()
            let body = try await response.bytes()
            printError("h2: pushed \(push.request.method) \(path) (stream \(push.promisedStreamID)): \(response.status.code), \(body.count) bytes")
        } catch {
            printError("h2: pushed \(push.request.method) \(path) (stream \(push.promisedStreamID)): \(error)")
        }
        counts.withLockedValue { $0.done += 1 }
        continuation.yield()
    }

    /// Waits until every push promised so far was read (or `timeout` passed).
    func waitForAll(timeout: Duration) async {
        guard counts.withLockedValue({ $0.done < $0.promised }) else { return }
        await withTaskGroup(of: Void.self) { [finished, counts] group in
            group.addTask {
                for await _ in finished where counts.withLockedValue({ $0.done >= $0.promised }) { return }
            }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }
}

struct ClientTLSOptions: ParsableArguments {
    @Option(help: "Trust the CA certificates in this PEM file (instead of the system's).")
    var cacert: String?

    @Flag(name: [.customShort("k"), .long], help: "Do not verify the server's certificate (insecure).")
    var insecure = false

    @Option(help: "Present this client certificate (PEM) for mutual TLS.")
    var cert: String?

    @Option(help: "The private key (PEM) of --cert.")
    var key: String?

    func validate() throws {
        if (cert == nil) != (key == nil) { throw ValidationError("--cert and --key go together") }
    }

    /// The TLS configuration for an `https://` URL; `nil` for `http://`.
    func configuration(for url: String) throws -> NGHTTP2TLSConfiguration? {
        guard url.lowercased().hasPrefix("https://") else { return nil }
        return try configuration()
    }

    /// The TLS configuration for any `https://` origin (an ``HTTP2Client`` uses it for those only).
    func configuration() throws -> NGHTTP2TLSConfiguration {
        var configuration = NGHTTP2TLSConfiguration.makeClientConfiguration()
        if let cacert { configuration.trustRoots = .file(cacert) }
        if insecure { configuration.certificateVerification = .insecureNoVerification }
        if let cert, let key {
            configuration.certificateChain = .file(cert)
            configuration.privateKey = .file(key)
        }
        return configuration
    }
}

/// Runs tasks on a NIO event loop (the request command's one loop), so that reading a response body and writing it
/// out happen on the connection's thread.
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }

    func asUnownedTaskExecutor() -> UnownedTaskExecutor {
        UnownedTaskExecutor(ordinary: self)
    }
}
#endif
