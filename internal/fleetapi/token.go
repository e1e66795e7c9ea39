package fleetapi

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
)

// DefaultTokenLimit is token_limit's default (API page size).
const DefaultTokenLimit = 100

// PageToken is the decoded form of a nextPageToken: two little-endian
// uint16 {Limit, Page}, URL-safe base64 with padding.
type PageToken struct {
	Limit uint16
	Page  uint16
}

// Encode returns the wire form ("ZAACAA==" for limit 100, page 2).
func (t PageToken) Encode() string {
	b := make([]byte, 4)
	binary.LittleEndian.PutUint16(b[0:], t.Limit)
	binary.LittleEndian.PutUint16(b[2:], t.Page)
	return base64.URLEncoding.EncodeToString(b)
}

// DecodePageToken parses a token and checks it against the server's limit.
func DecodePageToken(s string, limit uint16) (PageToken, error) {
	b, err := base64.URLEncoding.DecodeString(s)
	if err != nil {
		return PageToken{}, err
	}
	if len(b) < 4 {
		return PageToken{}, errors.New("unexpected EOF")
	}
	if len(b) > 4 {
		return PageToken{}, errors.New("too many values for page token")
	}
	t := PageToken{Limit: binary.LittleEndian.Uint16(b), Page: binary.LittleEndian.Uint16(b[2:])}
	if t.Limit != limit {
		return PageToken{}, fmt.Errorf("token limit must be %d", limit)
	}
	if t.Page == 0 {
		return PageToken{}, errors.New("token page must be greater than zero")
	}
	return t, nil
}
