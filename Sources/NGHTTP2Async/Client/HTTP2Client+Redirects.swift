import HTTPTypes
import Foundation

extension HTTP2Client.RedirectPolicy {
    /// The request a redirect response asks for, or `nil` when `status` is not a redirect this policy follows (the
    /// response is then returned): RFC 9110 §15.4's rules as described on ``HTTP2Client/RedirectPolicy``.
    ///
    /// - Parameters:
    ///   - status: the response's status; `location`: its `location` field.
    ///   - request: the request that got it (its `scheme`, `authority` and `path` are set).
    ///   - body: that request's body.
    ///   - redirectsSoFar: redirects already followed for this call.
    /// - Throws: ``HTTP2Error/tooManyRedirects(limit:)``, or ``HTTP2Error/invalidURL(_:)`` for a `location` that is
    ///   not an `http`/`https` URL.
    func redirect(
        status: HTTPResponse.Status,
        location: String?,
        after request: HTTPRequest,
        body: MessageBody,
        redirectsSoFar: Int
    ) throws -> (request: HTTPRequest, body: MessageBody)? {
        guard maxRedirects > 0, let location, [301, 302, 303, 307, 308].contains(status.code) else { return nil }
        guard let base = URL(string: request.urlString), let target = URL(string: location, relativeTo: base)?.absoluteURL else {
            throw HTTP2Error.invalidURL(location)
        }
        let next = try Target(target.absoluteString)
        let sameOrigin = next.scheme == request.scheme && next.authority == request.authority
        guard sameOrigin || allowsOtherOrigins else { return nil }
        guard redirectsSoFar < maxRedirects else { throw HTTP2Error.tooManyRedirects(limit: maxRedirects) }

        var method = request.method
        var body = body
        switch status.code {
        case 303 where method != .head, 301 where method == .post, 302 where method == .post:
            method = .get
            body = .empty
        case 307, 308:
            // The same method and body again: a body written by a closure cannot be produced twice.
            if case .writer = body.storage { return nil }
        default:
            break
        }
        var fields = request.headerFields
        if body.isEmpty, method != request.method {
            // What described the dropped body goes with it (RFC 9110 §15.4.4).
            for name in [HTTPField.Name.contentType, .contentLength, .contentEncoding, .contentLanguage, .contentLocation] {
                fields[name] = nil
            }
        }
        if !sameOrigin {
            // Credentials are for the origin that asked for them.
            for name in [HTTPField.Name.authorization, .cookie, .proxyAuthorization] { fields[name] = nil }
        }
        let redirected = HTTPRequest(method: method, scheme: next.scheme, authority: next.authority, path: next.pathAndQuery, headerFields: fields)
        return (redirected, body)
    }
}

extension HTTPRequest {
    /// `scheme://authority/path`, the key of a chain of redirects (loops are found by it).
    var urlString: String { "\(scheme ?? "")://\(authority ?? "")\(path ?? "/")" }
}
