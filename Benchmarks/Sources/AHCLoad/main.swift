// An AsyncHTTPClient load generator, the peer of swift-nghttp2's `h2 load` in `scripts/bench-peers`.
//
//     AHCLoad -n N -m M [--cacert CA] URL
//
// Sends N GET requests to URL with M in flight, over one HTTP/2 connection (TLS with ALPN, `httpVersion =
// .automatic`). Without --cacert, certificate verification is off. One warm-up request opens the connection before
// the clock starts, so that the pool knows the peer speaks h2 and does not open extra HTTP/1 connections for the
// first burst; the pool's HTTP/1 soft limit is also 1. Prints h2load-style lines:
//
//     finished in X.XXs, N.NN req/s, X.XXMB/s
//     requests: N total, S succeeded, F failed
import AsyncHTTPClient
import NIOCore
import NIOPosix
import NIOSSL

#if canImport(Glibc)
import Glibc
#endif

func usage() -> Never {
    print("usage: AHCLoad -n N -m M [--cacert CA] URL")
    exit(2)
}

var total = 0
var inFlight = 0
var caFile: String?
var url: String?
var rest = CommandLine.arguments.dropFirst()
while let argument = rest.popFirst() {
    switch argument {
    case "-n": guard let value = rest.popFirst().flatMap({ Int($0) }), value > 0 else { usage() }; total = value
    case "-m": guard let value = rest.popFirst().flatMap({ Int($0) }), value > 0 else { usage() }; inFlight = value
    case "--cacert": guard let value = rest.popFirst() else { usage() }; caFile = value
    default: if url == nil, !argument.hasPrefix("-") { url = argument } else { usage() }
    }
}
guard let url, total > 0, inFlight > 0 else { usage() }
let workers = min(inFlight, total)

var tls = TLSConfiguration.makeClientConfiguration()
if let caFile {
    tls.trustRoots = .file(caFile)
} else {
    tls.certificateVerification = .none
}
var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
configuration.httpVersion = .automatic
configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 1)
configuration.decompression = .disabled
let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)

@Sendable func fetch(_ client: HTTPClient, _ url: String) async -> (ok: Bool, bytes: Int) {
    do {
        let response = try await client.execute(HTTPClientRequest(url: url), timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (response.status == .ok, body.readableBytes)
    } catch {
        return (false, 0)
    }
}

let warmUp = await fetch(client, url)
if !warmUp.ok {
    print("warm-up request to \(url) failed")
}

let clock = ContinuousClock()
let start = clock.now
let (succeeded, bytes) = await withTaskGroup(of: (Int, Int).self) { group in
    for worker in 0..<workers {
        let count = total / workers + (worker < total % workers ? 1 : 0)
        group.addTask {
            var succeeded = 0
            var bytes = 0
            for _ in 0..<count {
                let result = await fetch(client, url)
                if result.ok { succeeded += 1 }
                bytes += result.bytes
            }
            return (succeeded, bytes)
        }
    }
    var succeeded = 0
    var bytes = 0
    for await (s, b) in group {
        succeeded += s
        bytes += b
    }
    return (succeeded, bytes)
}
let elapsed = start.duration(to: clock.now)
let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
try await client.shutdown().get()

func fixed(_ value: Double) -> String {
    let hundredths = Int((value * 100).rounded())
    let fraction = hundredths % 100
    return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
}
print("finished in \(fixed(seconds))s, \(fixed(Double(total) / seconds)) req/s, \(fixed(Double(bytes) / seconds / 1_000_000))MB/s")
print("requests: \(total) total, \(succeeded) succeeded, \(total - succeeded) failed")
exit(succeeded == total && warmUp.ok ? 0 : 1)
