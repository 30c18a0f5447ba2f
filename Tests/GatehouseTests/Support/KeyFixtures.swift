/// An RSA-2048 public key made with openssl, for tests that need only a public half
/// (generating RSA keys is slow in debug builds).
let fixtureRSA2048PublicKeyPEM = """
    -----BEGIN PUBLIC KEY-----
    MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA+ihsHtULQ+NuODgGc35S
    RgsDX1IQFNgLYq05utCXKfnvT2QGwG/IDLSWykF8gelnYDOrfBIR6eomlS4JGxSv
    n9fLFzJq3pEJfHJOsO/9orYljxBJBSBZIsj0NdGmT7GpRSigjvh0edcRCEbmhTDz
    N4YjKgbMai2ZywikRSlOgcQR3wtoNcQr/lu3VvFyt0Qm0jYt3y5wOdU0Qo1ljTgo
    LLMQMfg4BscZfqkekLoLCTJkay42rb3m8fl450tPfOcR+QpAwkvdSspcNduGaEMc
    2xN2jNGGXBucDPhWkOJZZSMNXwqVGq3ACh/OBR306QtNWV8EWrJhnKGVxCWpdS7M
    jwIDAQAB
    -----END PUBLIC KEY-----
    """
