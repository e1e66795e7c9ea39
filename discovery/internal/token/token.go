// Package token holds the pure rules of the discovery service: how a token
// and its deletion secret are generated, which tokens, member names and
// sizes are acceptable, and where a token's keys live in the etcd v2 store.
//
// Nothing here does network I/O; randomness comes from an io.Reader the
// caller passes (crypto/rand.Reader in production). The handler package
// applies these rules to HTTP requests.
package token

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Registry is the store directory that holds one subdirectory per token, as
// in the etcd discovery protocol.
const Registry = "/_etcd/registry"

// Len is the length of a token: 16 random bytes in lowercase hex.
const Len = 32

// DefaultSize is the cluster size /new uses when the request names none.
const DefaultSize = 3

// DefaultMaxSize is the largest size /new accepts unless configured otherwise.
const DefaultMaxSize = 99

// Hidden keys under a token's _config directory. Keys starting with "_" are
// hidden from etcd listings, so the secret's hash never shows in a GET of
// _config, and _config itself never shows in a GET of the token.
const (
	ConfigDir   = "_config"
	SizeName    = "size"    // _config/size: decimal cluster size (protocol key)
	CreatedName = "created" // _config/created: RFC 3339 creation time
	SecretName  = "_secret" // _config/_secret: hex SHA-256 of the deletion secret
	StateName   = "_state"  // etcd 0.4's leader-election key
)

// ErrInvalid is wrapped by every validation error of this package.
var ErrInvalid = errors.New("invalid")

// New returns a fresh token: Len lowercase hex characters made of 16 bytes
// read from rnd.
func New(rnd io.Reader) (string, error) {
	return randomHex(rnd)
}

// NewSecret returns a fresh deletion secret, formatted like a token.
func NewSecret(rnd io.Reader) (string, error) {
	return randomHex(rnd)
}

func randomHex(rnd io.Reader) (string, error) {
	var b [Len / 2]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return "", fmt.Errorf("token: read random bytes: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// HashSecret returns the value stored for secret: its SHA-256 in hex. The
// store never holds the secret itself.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// SecretMatches reports, in constant time, whether secret hashes to hash.
func SecretMatches(secret, hash string) bool {
	if secret == "" || hash == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(HashSecret(secret)), []byte(hash)) == 1
}

// Valid reports whether s has the shape of a token: exactly Len lowercase
// hex characters.
func Valid(s string) bool {
	if len(s) != Len {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Check returns nil for a valid token and an error saying what is wrong
// otherwise.
func Check(s string) error {
	if Valid(s) {
		return nil
	}
	return fmt.Errorf("%w token %q: want %d lowercase hex characters", ErrInvalid, clip(s), Len)
}

// MaxMemberLen bounds the length of a member key name.
const MaxMemberLen = 128

// CheckMember validates the last path segment of /<token>/<member>. Member
// names are etcd member IDs (hex) for etcd 2+ and machine names for etcd
// 0.4: letters, digits, '-', '_' and '.', not starting with '.', at most
// MaxMemberLen bytes. Names starting with '_' are reserved for the
// protocol's own keys and are rejected unless they are StateName.
func CheckMember(s string) error {
	if s == "" {
		return fmt.Errorf("%w member name: empty", ErrInvalid)
	}
	if len(s) > MaxMemberLen {
		return fmt.Errorf("%w member name: longer than %d bytes", ErrInvalid, MaxMemberLen)
	}
	if s[0] == '.' {
		return fmt.Errorf("%w member name %q: must not start with '.'", ErrInvalid, clip(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return fmt.Errorf("%w member name %q: only letters, digits, '-', '_' and '.' are allowed", ErrInvalid, clip(s))
		}
	}
	return nil
}

// Reserved reports whether a member segment names a protocol key rather
// than a member (it starts with '_').
func Reserved(member string) bool { return strings.HasPrefix(member, "_") }

// ParseSize parses the size parameter of /new. An empty string means
// DefaultSize. Anything that is not a decimal integer in 1..max is an error
// wrapping ErrInvalid whose text can be shown to the user as is.
func ParseSize(s string, max int) (int, error) {
	if s == "" {
		return DefaultSize, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, fmt.Errorf("%w size %q: must be an integer from 1 to %d", ErrInvalid, clip(s), max)
	}
	return n, nil
}

// clip shortens s for error messages so huge inputs are not echoed back.
func clip(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Dir is the store key of the token's directory.
func Dir(tok string) string { return Registry + "/" + tok }

// ConfigKey is the store key of the token's _config directory.
func ConfigKey(tok string) string { return Dir(tok) + "/" + ConfigDir }

// SizeKey is the store key of the token's size.
func SizeKey(tok string) string { return ConfigKey(tok) + "/" + SizeName }

// MemberKey is the store key of one member (or of _state).
func MemberKey(tok, member string) string { return Dir(tok) + "/" + member }
