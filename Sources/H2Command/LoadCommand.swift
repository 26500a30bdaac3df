#if CLI
import ArgumentParser
import Foundation
import HTTPTypes
import NGHTTP2Async
import NIOConcurrencyHelpers
import NIOCore

/// `h2 load`: an h2load-like load generator on ClientSession (or, with `--max-connections-per-host`, on one
/// HTTP2Client's pool).
struct LoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Send many requests over a few connections and report throughput and latency (like h2load)."
    )

    @Option(name: .customShort("n"), help: "Total number of requests.")
    var requests = 10_000

    @Option(name: .customShort("c"), help: "Number of connections.")
    var connections = 1

    @Option(name: .customShort("m"), help: "Requests in flight on each connection.")
    var streams = 10

    @Option(help: "Stop after this many seconds instead (the request count is then a ceiling).")
    var duration: Double?

    @Option(
        name: .customLong("max-connections-per-host"),
        help: """
            Pool mode: drive one HTTP2Client that opens up to N connections itself (another only when every open \
            one is full), with -c × -m requests in flight in all.
            """
    )
    var maxConnectionsPerHost: Int?

    @Argument(help: "The URL to request (GET).")
    var url: String

    @OptionGroup var tls: ClientTLSOptions

    func validate() throws {
        guard requests > 0, connections > 0, streams > 0 else { throw ValidationError("-n, -c and -m must be positive") }
        if let maxConnectionsPerHost, maxConnectionsPerHost <= 0 { throw ValidationError("--max-connections-per-host must be positive") }
    }

    func run() async throws {
        let path: String
        do {
            let components = URLComponents(string: url)
            let base = components?.percentEncodedPath.isEmpty == false ? components!.percentEncodedPath : "/"
            path = components?.percentEncodedQuery.map { "\(base)?\($0)" } ?? base
        }
        if let maxConnectionsPerHost {
            try await runPool(path: path, maxConnections: maxConnectionsPerHost)
            return
        }
        let clients: [ClientSession]
        do {
            var configuration = ClientSession.Configuration()
            configuration.tls = try tls.configuration(for: url)
            clients = try await (0..<connections).asyncMap { _ in try await ClientSession.connect(to: url, configuration: configuration) }
        } catch {
            printError("h2: \(describe(error, url: url))")
            throw ExitCode(1)
        }
        let issued = NIOLockedValueBox(0)
        let total = requests
        let deadline = duration.map { ContinuousClock.now + .milliseconds(Int($0 * 1000)) }
        let start = ContinuousClock.now
        let results = await withTaskGroup(of: WorkerResult.self) { group in
            for client in clients {
                for _ in 0..<streams {
                    // The workers run on their connection's event loop (ClientSession.taskExecutor): each response
                    // and each request goes between the worker and the connection without a thread hop.
                    group.addTask(executorPreference: client.taskExecutor) {
                        var result = WorkerResult()
                        while true {
                            if let deadline, ContinuousClock.now >= deadline { break }
                            let claimed = issued.withLockedValue { count -> Bool in
                                guard count < total else { return false }
                                count += 1
                                return true
                            }
                            guard claimed else { break }
                            let began = ContinuousClock.now
                            do {
                                let response = try await client.get(path)
                                var bytes = 0
                                for try await chunk in response.body { bytes += chunk.readableBytes }
                                result.latencies.record(ContinuousClock.now - began)
                                result.statuses[response.status.code, default: 0] += 1
                                result.bytes += bytes
                            } catch {
                                result.failures += 1
                                result.errors["\(error)", default: 0] += 1
                            }
                        }
                        return result
                    }
                }
            }
            return await group.reduce(into: WorkerResult()) { $0.merge($1) }
        }
        let elapsed = seconds(ContinuousClock.now - start)
        for client in clients { await client.close() }
        print(results.report(elapsed: elapsed, shape: "\(connections) connections, \(streams) streams each"))
        if results.latencies.count == 0 { throw ExitCode(1) }
    }
}

extension LoadCommand {
    /// Pool mode: one ``HTTP2Client``, `-c × -m` workers each sending one request after another; the pool decides
    /// how many connections carry them.
    private func runPool(path: String, maxConnections: Int) async throws {
        let request: HTTPRequest
        let port: Int
        do {
            let target = try Invocation(words: [url], stdin: nil)
            request = HTTPRequest(method: .get, scheme: target.request.scheme, authority: target.request.authority, path: path)
            port = URLComponents(string: target.url)?.port ?? (target.request.scheme == "https" ? 443 : 80)
        } catch {
            printError("h2: \(error)")
            throw ExitCode(1)
        }
        var configuration = HTTP2Client.Configuration()
        configuration.maxConnectionsPerOrigin = maxConnections
        configuration.decompression = .disabled  // as h2load: no accept-encoding
        configuration.connection.tls = try tls.configuration()
        let client = HTTP2Client(configuration: configuration)
        // One request first, so that a refused connection or a bad certificate fails the run with its message.
        do {
            let response = try await client.execute(request)
            for try await _ in response.body {}
        } catch {
            printError("h2: \(describe(error, url: url))")
            await client.shutdown()
            throw ExitCode(1)
        }
        let issued = NIOLockedValueBox(0)
        let total = requests
        let workers = connections * streams
        let deadline = duration.map { ContinuousClock.now + .milliseconds(Int($0 * 1000)) }
        let start = ContinuousClock.now
        let results = await withTaskGroup(of: WorkerResult.self) { group in
            for _ in 0..<workers {
                group.addTask {
                    var result = WorkerResult()
                    while true {
                        if let deadline, ContinuousClock.now >= deadline { break }
                        let claimed = issued.withLockedValue { count -> Bool in
                            guard count < total else { return false }
                            count += 1
                            return true
                        }
                        guard claimed else { break }
                        let began = ContinuousClock.now
                        do {
                            let response = try await client.execute(request)
                            var bytes = 0
                            for try await chunk in response.body { bytes += chunk.readableBytes }
                            result.latencies.record(ContinuousClock.now - began)
                            result.statuses[response.status.code, default: 0] += 1
                            result.bytes += bytes
                        } catch {
                            result.failures += 1
                            result.errors["\(error)", default: 0] += 1
                        }
                    }
                    return result
                }
            }
            return await group.reduce(into: WorkerResult()) { $0.merge($1) }
        }
        let elapsed = seconds(ContinuousClock.now - start)
        let open = openConnectionCount(toPort: port)
        await client.shutdown()
        let shape = "\(workers) in flight, pool of up to \(maxConnections) connections" + (open.map { ", \($0) open at the end" } ?? "")
        print(results.report(elapsed: elapsed, shape: shape))
        if results.latencies.count == 0 { throw ExitCode(1) }
    }

    /// How many TCP connections this process has open to `port` (Linux: its socket descriptors in /proc/self/fd
    /// matched against /proc/self/net/tcp and tcp6), i.e. the pool's connections once the run is over; `nil` where
    /// that cannot be read.
    private func openConnectionCount(toPort port: Int) -> Int? {
        let files = FileManager.default
        guard let descriptors = try? files.contentsOfDirectory(atPath: "/proc/self/fd") else { return nil }
        let inodes = Set(descriptors.compactMap { descriptor -> Substring? in
            guard let link = try? files.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(descriptor)"), link.hasPrefix("socket:[") else { return nil }
            return link.dropFirst(8).dropLast()
        })
        var count = 0
        for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
            // Read to the end: a /proc file's size is 0, which some readers take at its word.
            guard let file = FileHandle(forReadingAtPath: table), let data = try? file.readToEnd() else { continue }
            let text = String(decoding: data, as: UTF8.self)
            for line in text.split(separator: "\n").dropFirst() {
                // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
                let fields = line.split(separator: " ")
                guard fields.count > 9, let remotePort = fields[2].split(separator: ":").last.flatMap({ Int($0, radix: 16) }),
                    remotePort == port, inodes.contains(fields[9])
                else { continue }
                count += 1
            }
        }
        return count
    }
}

struct WorkerResult: Sendable {
    var latencies = LatencyHistogram()
    var statuses: [Int: Int] = [:]
    var failures = 0
    var errors: [String: Int] = [:]
    var bytes = 0

    mutating func merge(_ other: WorkerResult) {
        latencies.merge(other.latencies)
        statuses.merge(other.statuses, uniquingKeysWith: +)
        errors.merge(other.errors, uniquingKeysWith: +)
        failures += other.failures
        bytes += other.bytes
    }

    /// The h2load-like summary; `shape` says how the requests were carried (connections and streams, or the pool).
    func report(elapsed: Double, shape: String) -> String {
        let done = latencies.count
        func milliseconds(_ duration: Duration?) -> String {
            guard let duration else { return "-" }
            return String(format: "%.2fms", seconds(duration) * 1000)
        }
        var lines = [
            String(format: "finished in %.2fs, %.2f req/s, %@/s", elapsed, Double(done) / elapsed, Progress.bytes(Int(Double(bytes) / elapsed))),
            "requests: \(done + failures) total, \(done) succeeded, \(failures) failed (\(shape))",
            "status codes: " + statuses.keys.sorted().map { "\($0): \(statuses[$0]!)" }.joined(separator: ", "),
            "latency: min \(milliseconds(latencies.minimum)), median \(milliseconds(latencies.percentile(0.5))), p99 \(milliseconds(latencies.percentile(0.99))), max \(milliseconds(latencies.maximum))",
        ]
        for (error, count) in errors.sorted(by: { $0.value > $1.value }).prefix(5) { lines.append("error (\(count)×): \(error)") }
        return lines.joined(separator: "\n")
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
#endif
