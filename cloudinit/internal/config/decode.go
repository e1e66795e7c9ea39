package config

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"io"
)

// maxDecoded caps a decoded write_files entry (gzip bombs).
const maxDecoded = 64 << 20

// DecodeContent decodes write_files content according to encoding: "" (as
// is), b64/base64, gz/gzip, or gz/gzip followed by +b64/+base64.
func DecodeContent(content, encoding string) (string, error) {
	switch encoding {
	case "":
		return content, nil
	case "b64", "base64":
		return decodeBase64(content)
	case "gz", "gzip":
		return gunzipString(content)
	case "gz+base64", "gzip+base64", "gz+b64", "gzip+b64":
		raw, err := decodeBase64(content)
		if err != nil {
			return "", err
		}
		return gunzipString(raw)
	default:
		return "", fmt.Errorf("Unsupported encoding %q", encoding)
	}
}

func decodeBase64(s string) (string, error) {
	out, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", fmt.Errorf("base64: %w", err)
	}
	return string(out), nil
}

func gunzipString(s string) (string, error) {
	zr, err := gzip.NewReader(bytes.NewReader([]byte(s)))
	if err != nil {
		return "", fmt.Errorf("decompress: %w", err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, maxDecoded+1))
	if err != nil {
		return "", fmt.Errorf("decompress: %w", err)
	}
	if len(out) > maxDecoded {
		return "", fmt.Errorf("gzip: content larger than %d bytes", maxDecoded)
	}
	return string(out), nil
}
