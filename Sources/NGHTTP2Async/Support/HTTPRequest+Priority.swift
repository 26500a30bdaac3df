public import HTTPTypes

extension HTTPRequest {
    /// The request's `priority` header field, parsed: the urgency and incremental flag the client asks the server
    /// to send the response with ([RFC 9218 §5](https://www.rfc-editor.org/rfc/rfc9218.html#section-5)).
    ///
    /// `nil` when the request has no `priority` field, or one that is not a Structured Field Dictionary (RFC 9218 §4
    /// says both mean ``HTTPPriority/default``). Several `priority` lines are read as one, joined with commas
    /// (RFC 9110 §5.3). Setting a priority replaces the field with ``HTTPPriority/fieldValue``; setting `nil` removes it.
    public var priority: HTTPPriority? {
        get {
            headerFields[.priority].flatMap { HTTPPriority(fieldValue: $0) }
        }
        set {
            headerFields[.priority] = newValue?.fieldValue
        }
    }
}
