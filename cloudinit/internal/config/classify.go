package config

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Format is what a piece of user-data is.
type Format int

// The user-data formats coreos-cloudinit recognises.
const (
	Empty       Format = iota // zero bytes
	CloudConfig               // first line is exactly "#cloud-config"
	Script                    // first line starts with "#!"
	Ignition                  // JSON with ignitionVersion or ignition.version
	Unknown                   // anything else
)

// String names the format for logs and plans.
func (f Format) String() string {
	switch f {
	case Empty:
		return "empty"
	case CloudConfig:
		return "cloud-config"
	case Script:
		return "script"
	case Ignition:
		return "ignition"
	default:
		return "unknown"
	}
}

// Header is the first line every cloud-config must have.
const Header = "#cloud-config"

// Classify reports the format of user-data (already decompressed). A
// cloud-config header may carry trailing whitespace (including "\r"), but no
// BOM, leading space or trailing comment, as in coreos-cloudinit v1.14.
func Classify(data []byte) Format {
	if len(data) == 0 {
		return Empty
	}
	header, _, _ := strings.Cut(string(data), "\n")
	switch {
	case strings.TrimRight(header, " \t\r\n\v\f") == Header:
		return CloudConfig
	case strings.HasPrefix(header, "#!"):
		return Script
	case isIgnition(data):
		return Ignition
	default:
		return Unknown
	}
}

func isIgnition(data []byte) bool {
	var doc struct {
		IgnitionVersion *json.Number `json:"ignitionVersion"`
		Ignition        *struct {
			Version *string `json:"version"`
		} `json:"ignition"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return false
	}
	return doc.IgnitionVersion != nil || (doc.Ignition != nil && doc.Ignition.Version != nil)
}

// IsGzip reports whether data starts with the gzip magic bytes.
func IsGzip(data []byte) bool {
	return len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b
}

// Gunzip decompresses data if it is gzip and returns it unchanged otherwise.
func Gunzip(data []byte) ([]byte, error) {
	if !IsGzip(data) {
		return data, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("decompress: %w", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("decompress: %w", err)
	}
	return out, nil
}

// Validate is --validate: it checks raw user-data (decompressed, variables
// not substituted). Empty data, scripts and Ignition configs are not
// checked; anything that is not a cloud-config gets one error on line 1.
func Validate(data []byte) Report {
	switch Classify(data) {
	case Empty, Script, Ignition:
		return Report{}
	case CloudConfig:
		_, rep := Parse(data)
		return rep
	default:
		var r Report
		r.add(Error, 1, `must be %q or begin with "#!"`, Header)
		return r
	}
}
