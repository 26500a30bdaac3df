// The generated code of openapi.yaml (types, client, server) is this module; see openapi-generator-config.yaml.
