# The trust addon (dist/bin/spython_trust.node): stamp and verify code files for
# the editor and the CLI with the launcher's own checks, native/core/verify.c
# and sha256.c.  Built by `npm ci` / `npm run build` (node-gyp rebuild, then
# scripts/copy-addon.js).  C++ exceptions are on (node_addon_api_except).
{
  "targets": [
    {
      "target_name": "spython_trust",
      "sources": [
        "native/addon/trust.cc",
        "native/core/verify.c",
        "native/core/sha256.c"
      ],
      "include_dirs": ["native/core"],
      "dependencies": [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"
      ],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_c": ["-std=gnu11"],
      "cflags_cc": ["-std=gnu++17"],
      "cflags_cc!": ["-std=gnu++20", "-std=gnu++1y"],
      "libraries": ["-ldl", "-lpthread"]
    }
  ]
}
