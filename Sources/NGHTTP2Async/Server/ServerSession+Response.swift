public import HTTPTypes
public import NIOCore

extension ServerSession {
    /// The response a ``ServerSession`` handler returns: a head, and a body to send.
    public struct Response: Sendable {
        /// The response head.
        public var head: HTTPResponse
        /// The body.
        public var body: MessageBody

        /// Creates a response.
        public init(status: HTTPResponse.Status = .ok, headers: HTTPFields = [:], body: MessageBody = .empty) {
            self.head = HTTPResponse(status: status, headerFields: headers)
            self.body = body
        }

        /// Creates a response from a head.
        public init(_ head: HTTPResponse, body: MessageBody = .empty) {
            self.head = head
            self.body = body
        }
    }
}
