"""Local platform tooling: pinned toolchain, a real control plane on 127.0.0.1, CRDs."""
