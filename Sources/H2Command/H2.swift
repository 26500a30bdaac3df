#if CLI
import ArgumentParser

/// `h2`: HTTP/2 requests, a test server and a load generator, on libnghttp2.
@main
struct H2: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "h2",
        abstract: "HTTP/2 requests, an httpbin-style test server, and a load generator, on libnghttp2.",
        discussion: """
            Requests, as in HTTPie:  h2 [METHOD] URL [ITEM ...]
              Name:Value   header          name==value  query parameter
              name=value   JSON string     name:=json   raw JSON value
              @file        body from a file (a body is also read from a pipe on stdin)

            Examples:
              h2 serve --port 8080 --dir .
              h2 http://127.0.0.1:8080/get
              h2 POST http://127.0.0.1:8080/post name=h2 count:=3 X-Trace:1
              h2 load -n 100000 -c 4 -m 50 http://127.0.0.1:8080/get
            """,
        subcommands: [RequestCommand.self, ServeCommand.self, LoadCommand.self],
        defaultSubcommand: RequestCommand.self
    )

    static func main() async {
        MallocTuning.apply()
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}
#endif
