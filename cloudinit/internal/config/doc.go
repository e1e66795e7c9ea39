// Package config turns coreos-cloudinit user-data into a typed [Config] and a
// [Report] of problems, without touching the system.
//
// It is pure: bytes in, values out. Read [Classify] first (what kind of
// user-data is this?), then [Substitute] (the $public_ipv4 family of
// variables), then [Parse] (YAML to Config plus a line-numbered Report).
//
// Parsing walks a gopkg.in/yaml.v3 node tree against a fixed schema
// (schema.go) instead of decoding into structs, for three reasons: every
// report entry carries the line of the YAML node it is about; string fields
// receive the raw scalar text as coreos-cloudinit v1.14 did (permissions: 0644
// stays "0644", reboot-strategy: off stays "off"); and keys are matched with
// '-' and '_' treated alike, as the anchor's key-rewriting YAML fork did.
//
// Severity: [Error] entries mean the config must not be applied; [Warning]
// entries (unknown keys, deprecated keys, an unparsable etcd discovery URL)
// are applied anyway unless the caller is strict; [Info] never fails.
package config
