import Testing
import Foundation
import NIOCore
import HTTPTypes
@testable import NGHTTP2Async

/// Our ServerSession (h2c, prior knowledge) driven by curl, nghttp and h2load.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct ServerUnderPeersTests {
    /// `/get`: a small JSON description of the request; `/echo`: the request body streamed back; `/headers`: the
    /// `x-custom` request header sent back as `x-custom-echo`; `/text`: ``longText`` with a trailer; anything else: 404.
    static func handler(_ request: ServerSession.Request) async throws -> ServerSession.Response {
        let path = request.path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? request.path
        switch path {
        case "/get":
            let description = [
                "\"method\":\"\(jsonEscaped(request.method.rawValue))\"",
                "\"path\":\"\(jsonEscaped(request.path))\"",
                "\"authority\":\"\(jsonEscaped(request.authority ?? ""))\"",
                "\"user-agent\":\"\(jsonEscaped(request.headers[.userAgent] ?? ""))\"",
            ].joined(separator: ",")
            return ServerSession.Response(status: .ok, headers: [.contentType: "application/json"], body: .text("{\(description)}\n"))
        case "/echo":
            return ServerSession.Response(status: .ok, headers: [.contentType: "application/octet-stream"], body: .stream(request.body))
        case "/text":
            return ServerSession.Response(status: .ok, body: .text(Self.longText, trailers: [HTTPField.Name("x-end")!: "yes"]))
        case "/headers":
            var headers: HTTPFields = [.contentType: "text/plain"]
            if let value = request.headers[HTTPField.Name("x-custom")!] {
                headers[HTTPField.Name("x-custom-echo")!] = value
            }
            return ServerSession.Response(status: .ok, headers: headers, body: .text("headers\n"))
        default:
            return ServerSession.Response(status: .notFound, body: .text("not found\n"))
        }
    }

    /// 216,000 bytes of UTF-8 with two- and three-byte characters: many DATA frames, more than a 64 KiB window.
    static let longText = String(repeating: "héllo wörld ✓ ", count: 12_000)

    static func jsonEscaped(_ text: String) -> String {
        var result = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case _ where scalar.value < 0x20: result += String(format: "\\u%04x", scalar.value)
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    static func startServer() async throws -> ServerSession {
        try await ServerSession.bind(host: "127.0.0.1", port: 0, handler: handler)
    }

    @Test func curlGet() async throws {
        let server = try await Self.startServer()
        let directory = try Peers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let base = "http://127.0.0.1:\(server.port)"

        let result = try await Peers.run(
            "curl",
            ["--http2-prior-knowledge", "-s", "-S", "-o", "\(directory)/body", "-w", "%{http_version} %{http_code}", "\(base)/get?q=1"],
            timeout: .seconds(30)
        )
        #expect(result.status == 0, "curl failed: \(result.stderr)")
        #expect(result.text == "2 200", "curl -w said: \(result.text)")
        let body = try Data(contentsOf: URL(fileURLWithPath: "\(directory)/body"))
        let json = try JSONSerialization.jsonObject(with: body) as? [String: String]
        #expect(json?["method"] == "GET")
        #expect(json?["path"] == "/get?q=1")
        #expect(json?["authority"] == "127.0.0.1:\(server.port)")
        #expect(json?["user-agent"]?.hasPrefix("curl/") == true, "user-agent: \(json?["user-agent"] ?? "none")")

        // The brief's exact form: body and version on stdout.
        let plain = try await Peers.run(
            "curl",
            ["--http2-prior-knowledge", "-s", "-S", "\(base)/get", "-w", "%{http_version}"],
            timeout: .seconds(30)
        )
        #expect(plain.status == 0, "curl failed: \(plain.stderr)")
        #expect(plain.text.hasPrefix("{\"method\":\"GET\",\"path\":\"/get\""), "\(plain.text)")
        #expect(plain.text.hasSuffix("}\n2"), "\(plain.text)")

        let missing = try await Peers.run(
            "curl",
            ["--http2-prior-knowledge", "-s", "-S", "-o", "/dev/null", "-w", "%{http_code}", "\(base)/nothing"],
            timeout: .seconds(30)
        )
        #expect(missing.text == "404")
        await server.close()
    }

    /// A `.text` body is sent straight from the string's UTF-8: across many frames, through a 64 KiB window
    /// (nghttp's default) and then its trailers.
    @Test func longTextBodyWithTrailers() async throws {
        let server = try await Self.startServer()
        let directory = try Peers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let url = "http://127.0.0.1:\(server.port)/text"

        let curl = try await Peers.run("curl", ["--http2-prior-knowledge", "-sS", "-o", "\(directory)/body", url], timeout: .seconds(30))
        #expect(curl.status == 0, "curl failed: \(curl.stderr)")
        let body = try Data(contentsOf: URL(fileURLWithPath: "\(directory)/body"))
        #expect(body == Data(Self.longText.utf8), "curl got \(body.count) bytes")

        let nghttp = try await Peers.run("nghttp", ["-v", "-n", url], timeout: .seconds(30))
        #expect(nghttp.status == 0, "nghttp failed: \(nghttp.stderr)")
        #expect(nghttp.text.contains("x-end: yes"), "no trailer in: \(nghttp.text.suffix(600))")
        #expect(nghttp.text.contains("recv DATA frame"), "\(nghttp.text.suffix(600))")
        await server.close()
    }

    /// A 32 MiB upload with curl to /echo comes back identical.
    @Test func curlUpload32MiBEchoed() async throws {
        let server = try await Self.startServer()
        let directory = try Peers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let input = "\(directory)/upload.bin"
        let output = "\(directory)/echoed.bin"
        let bytes = payload(32 << 20, seed: 32)
        try Data(bytes).write(to: URL(fileURLWithPath: input))

        let result = try await Peers.run(
            "curl",
            [
                "--http2-prior-knowledge", "-s", "-S", "--data-binary", "@\(input)", "-H", "content-type: application/octet-stream",
                "-o", output, "-w", "%{http_version} %{http_code} %{size_upload} %{size_download}",
                "http://127.0.0.1:\(server.port)/echo",
            ],
            timeout: .seconds(90)
        )
        #expect(result.status == 0, "curl failed: \(result.stderr)")
        #expect(result.text == "2 200 \(bytes.count) \(bytes.count)", "curl -w said: \(result.text)")
        let echoed = try Data(contentsOf: URL(fileURLWithPath: output))
        #expect(echoed.count == bytes.count)
        #expect(echoed == Data(bytes), "the echoed file differs")
        await server.close()
    }

    /// A custom request header comes back as a response header.
    @Test func curlCustomHeader() async throws {
        let server = try await Self.startServer()
        let result = try await Peers.run(
            "curl",
            ["--http2-prior-knowledge", "-s", "-S", "-D", "-", "-o", "/dev/null", "-H", "x-custom: value 42", "http://127.0.0.1:\(server.port)/headers"],
            timeout: .seconds(30)
        )
        #expect(result.status == 0, "curl failed: \(result.stderr)")
        let lines = result.text.split(separator: "\r\n").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(lines.first == "HTTP/2 200", "\(lines)")
        #expect(lines.contains("x-custom-echo: value 42"), "response head: \(lines)")

        // Without the header, no echo.
        let without = try await Peers.run(
            "curl",
            ["--http2-prior-knowledge", "-s", "-S", "-D", "-", "-o", "/dev/null", "http://127.0.0.1:\(server.port)/headers"],
            timeout: .seconds(30)
        )
        #expect(without.status == 0)
        #expect(!without.text.lowercased().contains("x-custom-echo"))
        await server.close()
    }

    /// nghttp: several URIs on one connection, then uploads with -d.
    @Test func nghttpSeveralURIsAndUpload() async throws {
        let server = try await Self.startServer()
        let directory = try Peers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let base = "http://127.0.0.1:\(server.port)"

        let uris = ["/get", "/headers", "/get?a=1", "/nothing", "/get?b=2"].map { base + $0 }
        let several = try await Peers.run("nghttp", ["-nv", "-H", "x-custom: from-nghttp"] + uris, timeout: .seconds(30))
        #expect(several.status == 0, "nghttp failed: \(several.stderr)\n\(several.text.suffix(2000))")
        // Each request's response head, e.g. "[  0.004] recv (stream_id=13) :status: 200".
        var statuses: [Int: String] = [:]
        for line in several.text.split(separator: "\n") {
            guard let range = line.range(of: "recv (stream_id="), let close = line[range.upperBound...].firstIndex(of: ")") else { continue }
            let rest = line[line.index(after: close)...].trimmingCharacters(in: .whitespaces)
            guard rest.hasPrefix(":status: "), let id = Int(line[range.upperBound..<close]) else { continue }
            statuses[id] = String(rest.dropFirst(":status: ".count))
        }
        #expect(statuses.count == uris.count, "statuses per stream: \(statuses)\n\(several.text.suffix(3000))")
        #expect(statuses.values.sorted() == ["200", "200", "200", "200", "404"], "\(statuses)")
        #expect(several.text.contains("recv (stream_id=") && several.text.contains("x-custom-echo: from-nghttp"))
        #expect(several.text.contains("recv SETTINGS frame"))

        // Upload: -n discards the body, without -n the echo is printed.
        let file = "\(directory)/upload.bin"
        let bytes = payload(3 << 20 + 12_345, seed: 77)
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        let discarded = try await Peers.run("nghttp", ["-n", "-d", file, "\(base)/echo"], timeout: .seconds(60))
        #expect(discarded.status == 0, "nghttp -n -d failed: \(discarded.stderr)")
        let echoed = try await Peers.run("nghttp", ["-d", file, "\(base)/echo"], timeout: .seconds(60))
        #expect(echoed.status == 0, "nghttp -d failed: \(echoed.stderr)")
        #expect(echoed.stdout.count == bytes.count)
        #expect(echoed.stdout == Data(bytes), "the echo printed by nghttp differs from the file")
        await server.close()
    }

    /// h2load: 100,000 requests over 10 connections with 50 streams each, all succeed.
    @Test func h2loadHundredThousandRequests() async throws {
        let server = try await Self.startServer()
        let result = try await Peers.run(
            "h2load",
            ["-n", "100000", "-c", "10", "-m", "50", "-t", "1", "http://127.0.0.1:\(server.port)/get"],
            timeout: .seconds(120)
        )
        #expect(result.status == 0, "h2load failed: \(result.stderr)")
        let lines = result.text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        let finished = lines.first { $0.hasPrefix("finished in") }
        let requests = lines.first { $0.hasPrefix("requests:") }
        let statuses = lines.first { $0.hasPrefix("status codes:") }
        print("h2load against ServerSession: \(finished ?? "no 'finished in' line")")
        print("h2load: \(requests ?? "no 'requests:' line"); \(statuses ?? "")")
        let counts = Self.counts(in: requests ?? "")
        #expect(counts["total"] == 100_000, "\(requests ?? result.text)")
        #expect(counts["succeeded"] == 100_000, "\(requests ?? result.text)")
        #expect(counts["failed"] == 0, "\(requests ?? result.text)")
        #expect(counts["errored"] == 0, "\(requests ?? result.text)")
        #expect(counts["timeout"] == 0, "\(requests ?? result.text)")
        #expect(statuses?.hasPrefix("status codes: 100000 2xx") == true, "\(statuses ?? result.text)")

        // The server is still fine afterwards.
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        let response = try await client.get("/get")
        #expect(response.status == .ok)
        _ = try await response.bytes()
        await client.close()
        await server.close()
    }

    /// "requests: 200 total, 200 started, ..., 0 timeout" → ["total": 200, "started": 200, ...].
    static func counts(in line: String) -> [String: Int] {
        var counts: [String: Int] = [:]
        let body = line.drop { $0 != ":" }.dropFirst()
        for part in body.split(separator: ",") {
            let words = part.split(separator: " ")
            if words.count == 2, let value = Int(words[0]) { counts[String(words[1])] = value }
        }
        return counts
    }
}
