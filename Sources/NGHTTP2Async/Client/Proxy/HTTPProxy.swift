public import Foundation

/// A forward proxy that a client reaches in cleartext HTTP/1.1 and asks, with `CONNECT host:port`, for a tunnel to
/// the server ([RFC 9110 §9.3.6](https://www.rfc-editor.org/rfc/rfc9110.html#section-9.3.6)).
///
/// Through the tunnel the connection is the same as without a proxy: TLS with the *target's* host name (SNI and
/// certificate verification) for `https://`, HTTP/2 with prior knowledge for `http://`. The proxy sees only the
/// target's host and port (and, for `https://`, encrypted bytes).
///
/// ```swift
/// var configuration = ClientSession.Configuration()
/// configuration.proxy = try HTTPProxy(url: "http://user:secret@127.0.0.1:3128")
/// let client = try await ClientSession.connect(to: "https://example.org", configuration: configuration)
/// ```
///
/// The hop to the proxy is cleartext, so credentials (``Credentials``) travel readable to anyone on that path.
public struct HTTPProxy: Sendable, Hashable {
    /// A user name and password for the proxy, sent as `Proxy-Authorization: Basic base64(username:password)`
    /// ([RFC 9110 §11.7.1](https://www.rfc-editor.org/rfc/rfc9110.html#section-11.7.1),
    /// [RFC 7617](https://www.rfc-editor.org/rfc/rfc7617.html)).
    public struct Credentials: Sendable, Hashable {
        /// The user name (it must not contain `:`).
        public var username: String
        /// The password.
        public var password: String

        /// Basic credentials `username` / `password`.
        public init(username: String, password: String) {
            self.username = username
            self.password = password
        }

        /// The `Proxy-Authorization` field value: `Basic ` and base64 of `username:password` in UTF-8.
        public var authorization: String {
            "Basic " + Data("\(username):\(password)".utf8).base64EncodedString()
        }
    }

    /// The proxy's host name or IP address (an IPv6 address without brackets).
    public var host: String
    /// The proxy's TCP port.
    public var port: Int
    /// Basic credentials for the proxy, or `nil` to send none.
    public var credentials: Credentials?

    /// The proxy at `host:port`, with optional basic `credentials`.
    public init(host: String, port: Int, credentials: Credentials? = nil) {
        self.host = host
        self.port = port
        self.credentials = credentials
    }

    /// The proxy of an `http://[user:password@]host[:port]` URL (the port defaults to 80; user and password are
    /// percent-decoded). A path other than `/` is ignored, as curl does.
    ///
    /// - Throws: ``HTTP2Error/invalidURL(_:)`` for anything else, an `https://` proxy among them: the hop to the
    ///   proxy is cleartext.
    public init(url: String) throws {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
            let host = components.host, !host.isEmpty
        else { throw HTTP2Error.invalidURL(url) }
        guard scheme == "http" else { throw HTTP2Error.invalidURL("\(url) (a proxy URL must start with http://)") }
        if let port = components.port, !(1...65535).contains(port) { throw HTTP2Error.invalidURL(url) }
        self.host = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        self.port = components.port ?? 80
        if let username = components.user {
            self.credentials = Credentials(username: username, password: components.password ?? "")
        } else {
            self.credentials = nil
        }
    }

    /// The proxy the environment names for a request to `scheme://host`, the way curl reads it, or `nil` for none.
    ///
    /// - `https` targets use `https_proxy`, or else `HTTPS_PROXY`.
    /// - `http` targets use `http_proxy` only. The uppercase `HTTP_PROXY` is ignored, as curl ignores it: a CGI
    ///   script gets a request's `Proxy:` header as `HTTP_PROXY` in its environment, so a client could otherwise
    ///   choose the proxy ("httpoxy", CVE-2016-5385).
    /// - `no_proxy` (or else `NO_PROXY`) lists hosts that go direct, separated by commas: `*` for every host; a name
    ///   matches itself and its subdomains (`example.org` and `.example.org` both match `example.org` and
    ///   `a.example.org`); an IP address matches only itself; an entry may end in `:port`, and then matches only a
    ///   target on that port (the default port of `scheme` when the target names none). Names compare
    ///   case-insensitively; CIDR ranges are not supported.
    ///
    /// A value without `://` is taken as `http://value`. A value that is not a valid proxy URL (an `https://` proxy
    /// among them) is ignored: the result is `nil`.
    ///
    /// - Parameters:
    ///   - scheme: the target's scheme, `http` or `https` (other schemes get `nil`).
    ///   - host: the target's host, optionally with `:port` (an IPv6 address in brackets when a port follows).
    ///   - environment: the variables to read; the process's environment by default.
    public static func fromEnvironment(
        for scheme: String,
        host: String,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> HTTPProxy? {
        let scheme = scheme.lowercased()
        let value: String?
        switch scheme {
        case "https": value = nonEmpty(environment["https_proxy"]) ?? nonEmpty(environment["HTTPS_PROXY"])
        case "http": value = nonEmpty(environment["http_proxy"])
        default: return nil
        }
        guard let value else { return nil }
        let target = HostAndPort(host, defaultPort: scheme == "https" ? 443 : 80)
        if let noProxy = nonEmpty(environment["no_proxy"]) ?? nonEmpty(environment["NO_PROXY"]),
            bypasses(noProxy: noProxy, host: target.host, port: target.port ?? 80)
        {
            return nil
        }
        return try? HTTPProxy(url: value.contains("://") ? value : "http://\(value)")
    }

    /// Whether the `no_proxy` list `noProxy` sends `host:port` direct (the rules are on ``fromEnvironment(for:host:environment:)``).
    static func bypasses(noProxy: String, host: String, port: Int) -> Bool {
        let host = normalized(host)
        for rawEntry in noProxy.split(separator: ",") {
            let entry = rawEntry.trimmingCharacters(in: .whitespaces)
            if entry.isEmpty { continue }
            if entry == "*" { return true }
            let pattern = HostAndPort(entry, defaultPort: nil)
            if let entryPort = pattern.port, entryPort != port { continue }
            var name = normalized(pattern.host)
            if name.hasPrefix(".") { name.removeFirst() }
            if name.hasPrefix("*.") { name.removeFirst(2) }
            if name.isEmpty { continue }
            if host == name { return true }
            // A suffix matches names only: "0.0.1" must not match the address 127.0.0.1.
            if !isIPAddress(host), host.hasSuffix("." + name) { return true }
        }
        return false
    }

    private static func nonEmpty(_ value: String?) -> String? {
        guard let value = value?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        return value
    }

    private static func normalized(_ host: String) -> String {
        var host = host.lowercased()
        if host.hasSuffix(".") { host.removeLast() }  // a fully qualified "example.org."
        return host
    }

    private static func isIPAddress(_ host: String) -> Bool {
        host.contains(":") || (!host.isEmpty && host.allSatisfy { $0.isNumber || $0 == "." })
    }
}

/// `host[:port]`, `[v6]:port`, or a bare IPv6 address, split.
private struct HostAndPort {
    var host: String
    var port: Int?

    init(_ text: String, defaultPort: Int?) {
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            port = rest.hasPrefix(":") ? Int(rest.dropFirst()) ?? defaultPort : defaultPort
        } else if let colon = text.lastIndex(of: ":"), text.firstIndex(of: ":") == colon,
            let number = Int(text[text.index(after: colon)...])
        {
            host = String(text[..<colon])
            port = number
        } else {
            host = text  // a name, an IPv4 address, or an IPv6 address without brackets (no port)
            port = defaultPort
        }
    }
}
