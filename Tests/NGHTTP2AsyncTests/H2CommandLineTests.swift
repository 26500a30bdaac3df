import Testing
import Foundation
import NIOCore
import HTTPTypes
import NGHTTP2Async

/// The `h2` tool end to end: the built binary against `h2 serve`, nghttpd and our own server; `h2 serve` under
/// curl and nghttp; `h2 load` against nghttpd.
@Suite(.serialized) struct H2CommandLineTests {
    /// Starts `h2 serve` on a free port with `directory`, and returns it with its base URL.
    func startServe(directory: String) async throws -> (Peers.Running, String) {
        let port = try await Peers.freePort()
        let running = try await Peers.start(Peers.h2, ["serve", "--port", "\(port)", "--dir", directory, "--quiet"], waitForPort: port)
        return (running, "http://127.0.0.1:\(port)")
    }

    func json(_ result: Peers.Result) throws -> [String: Any] {
        let object = try? JSONSerialization.jsonObject(with: result.stdout)
        return try #require(object as? [String: Any], "not JSON (exit \(result.status)): '\(result.text)' stderr: \(result.stderr)")
    }

    @Test func requestsAgainstH2Serve() async throws {
        let directory = try Peers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let fileBytes = payload(3 << 20, seed: 9)
        try Data(fileBytes).write(to: URL(fileURLWithPath: directory + "/blob.bin"))
        try Data(#"{"from":"file"}"#.utf8).write(to: URL(fileURLWithPath: directory + "/body.json"))
        let (serve, base) = try await startServe(directory: directory)
        defer { serve.stop() }

        // Headers and query parameters.
        let get = try await Peers.run(Peers.h2, ["-v", "\(base)/get", "page==2", "q==a b", "X-Trace:abc"])
        #expect(get.status == 0)
        let getJSON = try json(get)
        #expect(getJSON["args"] as? [String: String] == ["page": "2", "q": "a b"])
        #expect((getJSON["headers"] as? [String: String])?["x-trace"] == "abc")
        #expect(getJSON["method"] as? String == "GET")

        // JSON fields make a POST with a JSON body.
        let post = try await Peers.run(Peers.h2, ["\(base)/post", "name=h2", "count:=3", "tags:=[1,2]"])
        let postJSON = try json(post)
        #expect(postJSON["method"] as? String == "POST")
        let sent = postJSON["json"] as? [String: Any]
        #expect(sent?["name"] as? String == "h2" && sent?["count"] as? Int == 3 && sent?["tags"] as? [Int] == [1, 2])
        #expect((postJSON["headers"] as? [String: String])?["content-type"] == "application/json")

        // A body from a file, and from stdin.
        let fromFile = try await Peers.run(Peers.h2, ["PUT", "\(base)/put", "@\(directory)/body.json"])
        #expect(try json(fromFile)["data"] as? String == #"{"from":"file"}"#)
        let piped = try await Peers.run(Peers.h2, ["\(base)/echo"], stdin: Data("piped bytes".utf8))
        #expect(piped.text == "piped bytes")

        // An @file body is streamed from the file with its content-length; /echo returns the same bytes.
        let upload = try await Peers.run(Peers.h2, ["PUT", "\(base)/discard", "@\(directory)/blob.bin"])
        #expect(try json(upload)["bytes"] as? Int == 3 << 20)
        let echoed = try await Peers.run(Peers.h2, ["\(base)/echo", "@\(directory)/blob.bin", "-o", directory + "/echoed.bin"])
        #expect(echoed.status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: directory + "/echoed.bin")) == Data(fileBytes))
        let missing = try await Peers.run(Peers.h2, ["PUT", "\(base)/discard", "@\(directory)/missing.bin"])
        #expect(missing.status != 0 && missing.stderr.contains("cannot read"))

        // -o writes the same bytes.
        let output = directory + "/out.bin"
        let download = try await Peers.run(Peers.h2, ["-o", output, "\(base)/blob.bin"])
        #expect(download.status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: output)) == Data(fileBytes))

        // -v prints the frames both ways; trailers come after the body.
        let verbose = try await Peers.run(Peers.h2, ["-v", "\(base)/trailers"])
        #expect(verbose.stderr.contains("send [SETTINGS frame"))
        #expect(verbose.stderr.contains("recv [SETTINGS frame"))
        #expect(verbose.stderr.contains("send [HEADERS frame"))
        #expect(verbose.stderr.contains("recv [DATA frame"))
        #expect(verbose.stderr.contains("x-checksum: d41d8cd9"))
        #expect(verbose.stderr.contains("trailers:"))
        #expect(verbose.text == "a body, then trailers\n")

        // -I prints only the head.
        let head = try await Peers.run(Peers.h2, ["-I", "\(base)/blob.bin"])
        #expect(head.text.hasPrefix(":status: 200\n") && head.text.contains("content-length: \(3 << 20)"))

        // --check-status exits 3, 4 or 5; without it a 404 is a success.
        #expect(try await Peers.run(Peers.h2, ["--check-status", "\(base)/status/404"]).status == 4)
        #expect(try await Peers.run(Peers.h2, ["--check-status", "\(base)/status/503"]).status == 5)
        #expect(try await Peers.run(Peers.h2, ["--check-status", "\(base)/status/302"]).status == 3)
        #expect(try await Peers.run(Peers.h2, ["\(base)/status/404"]).status == 0)

        // --timeout exits 2.
        let slow = try await Peers.run(Peers.h2, ["--timeout", "0.3", "\(base)/delay/3"])
        #expect(slow.status == 2)
        #expect(slow.stderr.contains("timed out"))
    }

    @Test func failuresHaveClearMessagesAndExitCodes() async throws {
        let badURL = try await Peers.run(Peers.h2, ["ftp://127.0.0.1/"])
        #expect(badURL.status == 1)
        #expect(badURL.stderr.contains("invalid URL"))

        let unusedPort = try await Peers.freePort()
        let refused = try await Peers.run(Peers.h2, ["http://127.0.0.1:\(unusedPort)/"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("connection refused"), "\(refused.stderr)")

        let unknownHost = try await Peers.run(Peers.h2, ["http://no-such-host.invalid/"])
        #expect(unknownHost.status == 1)
        #expect(unknownHost.stderr.contains("unknown host"), "\(unknownHost.stderr)")

        let badItem = try await Peers.run(Peers.h2, ["http://127.0.0.1:\(unusedPort)/", "not-an-item"])
        #expect(badItem.status == 1)
        #expect(badItem.stderr.contains("not a request item"))

        // A stream the server resets mid-body.
        struct Boom: Error {}
        let server = try await ServerSession.bind(port: 0) { _ in
            ServerSession.Response(body: .writer { writer in
                try await writer.write("partial")
                throw Boom()
            })
        }
        let reset = try await Peers.run(Peers.h2, ["http://127.0.0.1:\(server.port)/"])
        #expect(reset.status == 1)
        #expect(reset.stderr.contains("reset by the server with INTERNAL_ERROR"), "\(reset.stderr)")
        await server.close()
    }

    @Test func requestsAgainstNghttpd() async throws {
        let directory = try Peers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let bytes = payload(5 << 20, seed: 4)
        try Data(bytes).write(to: URL(fileURLWithPath: directory + "/file.bin"))
        let (nghttpd, port) = try await Peers.nghttpd(directory: directory)
        defer { nghttpd.stop() }
        let output = directory + "/copy.bin"
        let result = try await Peers.run(Peers.h2, ["-o", output, "http://127.0.0.1:\(port)/file.bin"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: output)) == Data(bytes))
        let missing = try await Peers.run(Peers.h2, ["--check-status", "http://127.0.0.1:\(port)/missing"])
        #expect(missing.status == 4)
        let verbose = try await Peers.run(Peers.h2, ["-v", "-o", "/dev/null", "http://127.0.0.1:\(port)/file.bin"])
        #expect(verbose.stderr.contains("recv [HEADERS frame"))
        // -o opens the path; it never replaces it (a rename over /dev/null once turned it into a regular file).
        var status = stat()
        #expect(stat("/dev/null", &status) == 0 && status.st_mode & S_IFMT == S_IFCHR, "/dev/null is no longer a device")
        #expect(verbose.stderr.contains(":status: 200"))
    }

    @Test func everyEndpointUnderCurlAndNghttp() async throws {
        let directory = try Peers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data("<h1>index</h1>\n".utf8).write(to: URL(fileURLWithPath: directory + "/index.html"))
        let (serve, base) = try await startServe(directory: directory)
        defer { serve.stop() }
        func curl(_ arguments: [String]) async throws -> Peers.Result {
            try await Peers.run("curl", ["-sS", "--http2-prior-knowledge"] + arguments)
        }
        for (method, path) in [("GET", "get"), ("POST", "post"), ("PUT", "put"), ("PATCH", "patch"), ("DELETE", "delete"), ("OPTIONS", "anything/x")] {
            let result = try await curl(["-X", method, "-d", "a=1", "\(base)/\(path)", "-w", "\n%{http_version} %{http_code}"])
            #expect(result.text.hasSuffix("\n2 200"), "\(method) /\(path): \(result.text)")
            #expect(result.text.contains("\"method\" : \"\(method)\""))
        }
        #expect(try await curl(["-X", "POST", "\(base)/get", "-o", "/dev/null", "-w", "%{http_code}"]).text == "405")
        #expect(try await curl(["-H", "X-One: 1", "\(base)/headers"]).text.contains("\"x-one\" : \"1\""))
        #expect(try await curl(["\(base)/status/418", "-o", "/dev/null", "-w", "%{http_code}"]).text == "418")
        #expect(try await curl(["\(base)/bytes/1000"]).stdout.count == 1000)
        #expect(try await curl(["\(base)/stream-bytes/5000?chunk_size=700"]).stdout.count == 5000)
        #expect(try await curl(["\(base)/bytes/1000?seed=5"]).stdout == (try await curl(["\(base)/stream-bytes/1000?seed=5&chunk_size=64"])).stdout)
        #expect(try await curl(["\(base)/delay/0.1"]).text.contains("\"path\" : \"/delay/0.1\""))
        #expect(try await curl(["--data-binary", "echo me", "\(base)/echo"]).text == "echo me")
        let gzip = try await curl(["--compressed", "-D", "-", "\(base)/gzip"])
        #expect(gzip.text.contains("content-encoding: gzip"))
        #expect(gzip.text.contains("\"gzipped\":true"))
        #expect(try await curl(["\(base)/"]).text == "<h1>index</h1>\n")
        #expect(try await curl(["-I", "\(base)/index.html"]).text.contains("content-type: text/html"))
        #expect(try await curl(["\(base)/nope", "-o", "/dev/null", "-w", "%{http_code}"]).text == "404")
        let uploaded = Data(payload(1 << 20, seed: 4))
        try uploaded.write(to: URL(fileURLWithPath: directory + "/upload.bin"))
        #expect(try await curl(["-T", directory + "/upload.bin", "\(base)/discard"]).text.contains("\"bytes\" : \(1 << 20)"))
        let large = try await curl(["\(base)/upload.bin"])  // over 64 KiB: streamed from the file
        #expect(large.stdout == uploaded)

        // nghttp: several endpoints on one connection, and the trailers frame.
        let nghttp = try await Peers.run("nghttp", ["-nv", "\(base)/get", "\(base)/trailers", "\(base)/bytes/100", "\(base)/index.html"])
        #expect(nghttp.status == 0)
        #expect(nghttp.text.contains("x-checksum: d41d8cd9"))
        #expect(nghttp.text.components(separatedBy: ":status: 200").count - 1 == 4)
        let nghttpUpload = try await Peers.run("nghttp", ["-d", directory + "/upload.bin", "\(base)/discard"])
        #expect(nghttpUpload.text.contains("\"bytes\" : \(1 << 20)"), "\(nghttpUpload.text)")
    }

    @Test func loadAgainstNghttpdCountsLikeH2load() async throws {
        let directory = try Peers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data("hello\n".utf8).write(to: URL(fileURLWithPath: directory + "/index.html"))
        let (nghttpd, port) = try await Peers.nghttpd(directory: directory)
        defer { nghttpd.stop() }
        let url = "http://127.0.0.1:\(port)/index.html"
        let ours = try await Peers.run(Peers.h2, ["load", "-n", "20000", "-c", "2", "-m", "20", url])
        #expect(ours.status == 0, "\(ours.stderr)")
        #expect(ours.text.contains("requests: 20000 total, 20000 succeeded, 0 failed"), "\(ours.text)")
        #expect(ours.text.contains("status codes: 200: 20000"))
        let theirs = try await Peers.run("h2load", ["-n", "20000", "-c", "2", "-m", "20", "-t", "1", url])
        #expect(theirs.text.contains("requests: 20000 total, 20000 started, 20000 done, 20000 succeeded, 0 failed"))
    }

    @Test func followRedirectsFromAServerSession() async throws {
        // /a → 302 /b; /hop/N → 302 /hop/N-1 … /hop/0; /loop → /loop; /gone → 301 to another origin's /b.
        let server = try await ServerSession.bind(port: 0) { request in
            let path = request.path
            func redirect(_ status: HTTPResponse.Status, to location: String) -> ServerSession.Response {
                ServerSession.Response(status: status, headers: [.location: location], body: .text("moved"))
            }
            if path == "/a" { return redirect(.found, to: "/b") }
            if path == "/loop" { return redirect(.found, to: "/loop") }
            if path.hasPrefix("/hop/"), let n = Int(path.dropFirst(5)), n > 0 { return redirect(.found, to: "/hop/\(n - 1)") }
            if path == "/post-303" { return redirect(.seeOther, to: "/b") }
            return ServerSession.Response(status: .ok, headers: [.contentType: "text/plain"], body: .text("at \(request.method) \(path)\n"))
        }
        defer { Task { await server.close() } }
        let base = "http://127.0.0.1:\(server.port)"

        // Without --follow the 302 is the answer (its body printed; --check-status says 3).
        let plain = try await Peers.run(Peers.h2, ["GET", "\(base)/a"])
        #expect(plain.status == 0 && plain.text == "moved", "\(plain.text) \(plain.stderr)")
        #expect(try await Peers.run(Peers.h2, ["--check-status", "\(base)/a"]).status == 3)

        // --follow reaches /b; --check-status then sees its 200.
        let followed = try await Peers.run(Peers.h2, ["GET", "--follow", "--check-status", "\(base)/a"])
        #expect(followed.status == 0, "\(followed.stderr)")
        #expect(followed.text == "at GET /b\n")
        #expect(try await Peers.run(Peers.h2, ["-F", "-I", "\(base)/a"]).text.hasPrefix(":status: 200\n"))

        // -v shows every hop: both requests' HEADERS and both responses'.
        let verbose = try await Peers.run(Peers.h2, ["-v", "--follow", "\(base)/a"])
        #expect(verbose.stderr.contains(":status: 302"), "\(verbose.stderr)")
        #expect(verbose.stderr.contains(":status: 200"))
        #expect(verbose.stderr.contains(":path: /a") && verbose.stderr.contains(":path: /b"))

        // A POST that gets 303 becomes a GET without its body.
        let posted = try await Peers.run(Peers.h2, ["--follow", "\(base)/post-303", "name=h2"])
        #expect(posted.text == "at GET /b\n", "\(posted.text) \(posted.stderr)")

        // --max-redirects: within it, reached; past it, exit 1 with the limit named. A loop is named as one.
        #expect(try await Peers.run(Peers.h2, ["--follow", "--max-redirects", "3", "\(base)/hop/3"]).text == "at GET /hop/0\n")
        let tooMany = try await Peers.run(Peers.h2, ["--follow", "--max-redirects", "2", "\(base)/hop/3"])
        #expect(tooMany.status == 1 && tooMany.stderr.contains("more than 2 redirects"), "\(tooMany.stderr)")
        let defaultLimit = try await Peers.run(Peers.h2, ["--follow", "\(base)/hop/31"])
        #expect(defaultLimit.status == 1 && defaultLimit.stderr.contains("more than 30 redirects"), "\(defaultLimit.stderr)")
        #expect(try await Peers.run(Peers.h2, ["--follow", "\(base)/hop/30"]).text == "at GET /hop/0\n")
        let loop = try await Peers.run(Peers.h2, ["--follow", "\(base)/loop"])
        #expect(loop.status == 1, "\(loop.stderr)")

        // --max-redirects alone is a usage error.
        let alone = try await Peers.run(Peers.h2, ["--max-redirects", "3", "\(base)/a"])
        #expect(alone.status != 0 && alone.stderr.contains("--max-redirects goes with --follow"), "\(alone.stderr)")
    }

    @Test func aRequestGoesThroughTinyproxyWithProxy() async throws {
        let directory = try Peers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try await ServerSession.bind(port: 0) { request in
            ServerSession.Response(body: .text("via tunnel \(request.path)\n"))
        }
        defer { Task { await server.close() } }
        let (proxy, proxyPort) = try await Peers.tinyproxy(directory: directory, connectPorts: [server.port])
        defer { proxy.stop() }
        let result = try await Peers.run(Peers.h2, ["--proxy", "http://127.0.0.1:\(proxyPort)", "http://127.0.0.1:\(server.port)/p"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.text == "via tunnel /p\n")
        let refused = try await Peers.run(Peers.h2, ["--proxy", "http://127.0.0.1:\(proxyPort)", "http://127.0.0.1:1/p"])
        #expect(refused.status != 0 && refused.stderr.contains("proxy"), "\(refused.stderr)")
    }

    @Test func decompressionIsAskedForUnlessNoDecompress() async throws {
        let directory = try Peers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (serve, base) = try await startServe(directory: directory)
        defer { serve.stop() }
        let asked = try json(try await Peers.run(Peers.h2, ["\(base)/headers"]))
        #expect((asked["headers"] as? [String: String])?["accept-encoding"] == "gzip, deflate")
        let notAsked = try json(try await Peers.run(Peers.h2, ["--no-decompress", "\(base)/headers"]))
        #expect((notAsked["headers"] as? [String: String])?["accept-encoding"] == nil)
        // A header given on the command line wins.
        let own = try json(try await Peers.run(Peers.h2, ["\(base)/headers", "Accept-Encoding:identity"]))
        #expect((own["headers"] as? [String: String])?["accept-encoding"] == "identity")
        // --no-decompress prints the body as received: /gzip's gzip bytes, with its content-encoding.
        let raw = try await Peers.run(Peers.h2, ["--no-decompress", "\(base)/gzip", "Accept-Encoding:gzip"])
        #expect(raw.status == 0 && raw.stdout.prefix(2) == Data([0x1F, 0x8B]), "\(raw.stderr)")
        let rawHead = try await Peers.run(Peers.h2, ["--no-decompress", "-I", "\(base)/gzip", "Accept-Encoding:gzip"])
        #expect(rawHead.text.contains("content-encoding: gzip"))
        // By default /gzip and /deflate come back decoded, as JSON.
        #expect(try json(try await Peers.run(Peers.h2, ["\(base)/gzip"]))["gzipped"] as? Bool == true)
        #expect(try json(try await Peers.run(Peers.h2, ["\(base)/deflate"]))["deflated"] as? Bool == true)
    }

    @Test func loadInPoolModeAgainstNghttpd() async throws {
        let directory = try Peers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data("hello\n".utf8).write(to: URL(fileURLWithPath: directory + "/index.html"))
        let (nghttpd, port) = try await Peers.nghttpd(directory: directory, extra: ["-m", "50"])
        defer { nghttpd.stop() }
        let url = "http://127.0.0.1:\(port)/index.html"
        // 300 in flight over connections of 50 streams: the pool opens up to its limit of 4.
        let pooled = try await Peers.run(Peers.h2, ["load", "--max-connections-per-host", "4", "-n", "20000", "-m", "300", url])
        #expect(pooled.status == 0, "\(pooled.stderr)")
        #expect(pooled.text.contains("requests: 20000 total, 20000 succeeded, 0 failed (300 in flight, pool of up to 4 connections"), "\(pooled.text)")
        #expect(pooled.text.contains("4 open at the end"), "\(pooled.text)")
        #expect(pooled.text.contains("status codes: 200: 20000"))
        let refused = try await Peers.run(Peers.h2, ["load", "--max-connections-per-host", "2", "-n", "10", "http://127.0.0.1:\(try await Peers.freePort())/"])
        #expect(refused.status == 1 && refused.stderr.contains("connection refused"), "\(refused.stderr)")
    }

    @Test func serveStopsGracefullyOnSIGTERM() async throws {
        let directory = try Peers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (serve, base) = try await startServe(directory: directory)
        defer { serve.stop() }
        #expect(try await Peers.run(Peers.h2, ["\(base)/get"]).status == 0)
        kill(serve.process.processIdentifier, SIGTERM)
        for _ in 0..<500 where serve.process.isRunning { try await Task.sleep(for: .milliseconds(10)) }
        #expect(!serve.process.isRunning, "h2 serve did not stop on SIGTERM")
        if !serve.process.isRunning { #expect(serve.process.terminationStatus == 0) }
    }

    /// `h2 serve` keeps small files it has read, but only while the file on disk is the same one: an edit (same size
    /// or not) or a replacement by rename is served at once.
    @Test func serveAnswersAFileChangedOnDiskWithItsNewContents() async throws {
        let directory = try Peers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = URL(fileURLWithPath: directory + "/page.txt")
        try Data("one\n".utf8).write(to: file)
        let (serve, base) = try await startServe(directory: directory)
        defer { serve.stop() }
        func get() async throws -> String { try await Peers.run(Peers.h2, ["\(base)/page.txt"]).text }
        #expect(try await get() == "one\n")
        #expect(try await get() == "one\n", "answered from the cache")
        let handle = try FileHandle(forWritingTo: file)  // in place: same inode, same size
        try handle.write(contentsOf: Data("two\n".utf8))
        try handle.close()
        #expect(try await get() == "two\n")
        try Data("three\n".utf8).write(to: file, options: .atomic)  // a new file renamed over the old one
        #expect(try await get() == "three\n")
        try FileManager.default.removeItem(at: file)
        #expect(try await Peers.run(Peers.h2, ["--check-status", "\(base)/page.txt"]).status == 4, "a removed file is 404")
    }

    @Test func serveNeverAnswersWithAFileOutsideItsDirectory() async throws {
        let directory = try Peers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory + "/sub", withIntermediateDirectories: true)
        try Data("inside\n".utf8).write(to: URL(fileURLWithPath: directory + "/sub/a.txt"))
        let (serve, base) = try await startServe(directory: directory + "/sub")
        defer { serve.stop() }
        func status(_ path: String) async throws -> String {
            try await Peers.run("curl", ["-sS", "--http2-prior-knowledge", "--path-as-is", "-o", "/dev/null", "-w", "%{http_code}", base + path]).text
        }
        #expect(try await status("/a.txt") == "200")
        for path in ["/../sub/a.txt", "/%2e%2e/sub/a.txt", "/x/..%2f..%2fsub/a.txt", "/.."] {
            #expect(try await status(path) == "403", "\(path)")
        }
        #expect(try await status("/.../a.txt") == "404", "three dots are a name, not the parent")
    }

    @Test func serveWritesAnAccessLogLinePerRequest() async throws {
        let port = try await Peers.freePort()
        let serve = try await Peers.start(Peers.h2, ["serve", "--port", "\(port)"], waitForPort: port)
        defer { serve.stop() }
        for path in ["/get", "/status/404", "/bytes/10"] {
            _ = try await Peers.run(Peers.h2, ["http://127.0.0.1:\(port)\(path)"])
        }
        kill(serve.process.processIdentifier, SIGTERM)  // the log is written in batches; the rest when it stops
        let log = String(decoding: await Peers.readToEnd(serve.output.fileHandleForReading), as: UTF8.self)
        let lines = log.split(separator: "\n").filter { $0.hasPrefix("127.0.0.1 ") }
        #expect(lines.count == 3, "\(log)")
        // Each event loop gathers its own lines, and the three connections may be on different loops: any order.
        for prefix in ["127.0.0.1 \"GET /get\" 200 - ", "127.0.0.1 \"GET /status/404\" 404 - ", "127.0.0.1 \"GET /bytes/10\" 200 10 "] {
            #expect(lines.filter { $0.hasPrefix(prefix) }.count == 1, "\(prefix)in \(log)")
        }
        #expect(lines.allSatisfy { $0.hasSuffix("ms") })
    }

    @Test func serveClosesSilentIdleAndHalfSentConnections() async throws {
        let port = try await Peers.freePort()
        let serve = try await Peers.start(
            Peers.h2,
            ["serve", "--port", "\(port)", "--quiet", "--idle-timeout", "0.3", "--header-timeout", "0.3", "--max-connections", "3"],
            waitForPort: port
        )
        defer { serve.stop() }
        let silent = try await RawConnection.connect(port: port)
        let idle = try await RawConnection.connect(port: port)
        try await idle.send(clientPreface)
        let halfSent = try await RawConnection.connect(port: port)
        try await halfSent.send(clientPreface + rawGet(streamID: 1, endHeaders: false))
        for (name, connection) in [("silent", silent), ("idle", idle), ("half-sent", halfSent)] {
            #expect(await connection.waitForClose(timeout: .seconds(10)), "h2 serve kept the \(name) connection open")
            #expect(RawFrame.parse(connection.received).contains { $0.type == 0x7 }, "no GOAWAY for the \(name) connection")
        }
    }

    @Test func serveRefusesAConnectionPastMaxConnectionsAndServesAgainBelowIt() async throws {
        let port = try await Peers.freePort()
        let serve = try await Peers.start(Peers.h2, ["serve", "--port", "\(port)", "--quiet", "--max-connections", "2"], waitForPort: port)
        defer { serve.stop() }
        while serve.process.isRunning, try await Peers.run("curl", ["-s", "--http2-prior-knowledge", "http://127.0.0.1:\(port)/get"]).status != 0 {
            try await Task.sleep(for: .milliseconds(20))  // the port probe's connection is gone once curl is served
        }
        let a = try await RawConnection.connect(port: port)
        let b = try await RawConnection.connect(port: port)
        try await a.send(clientPreface)
        try await b.send(clientPreface)
        try await Task.sleep(for: .milliseconds(100))
        let refused = try await RawConnection.connect(port: port)
        try? await refused.send(clientPreface + rawGet(streamID: 1))  // the refusal may come (and close) first
        #expect(await refused.waitForClose(timeout: .seconds(10)))
        let frames = RawFrame.parse(refused.received)
        #expect(frames.first { $0.type == 0x7 }?.goawayLastStreamID == 0, "refused with GOAWAY naming no stream: \(frames)")
        #expect(!frames.contains { $0.type == 0x1 }, "the refused request was not answered: \(frames)")
        await a.close()
        var served = false
        for _ in 0..<100 where !served {
            let curl = try await Peers.run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--http2-prior-knowledge", "http://127.0.0.1:\(port)/get"])
            served = curl.text == "200"
            if !served { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(served, "below the limit again, curl is served")
        await b.close()
    }
}
