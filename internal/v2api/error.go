package v2api

import (
	"fmt"
	"net/http"
)

// Error codes of the etcd v2 API, with the numbers etcd uses.
const (
	EcodeKeyNotFound      = 100
	EcodeTestFailed       = 101
	EcodeNotFile          = 102
	EcodeNotDir           = 104
	EcodeNodeExist        = 105
	EcodeKeyIsPreserved   = 106
	EcodeRootROnly        = 107
	EcodeDirNotEmpty      = 108
	EcodeExistingPeerAddr = 109
	EcodeUnauthorized     = 110

	EcodeValueRequired        = 200
	EcodePrevValueRequired    = 201
	EcodeTTLNaN               = 202
	EcodeIndexNaN             = 203
	EcodeValueOrTTLRequired   = 204
	EcodeTimeoutNaN           = 205
	EcodeNameRequired         = 206
	EcodeIndexOrValueRequired = 207
	EcodeIndexValueMutex      = 208
	EcodeInvalidField         = 209
	EcodeInvalidForm          = 210
	EcodeRefreshValue         = 211
	EcodeRefreshTTLRequired   = 212

	EcodeRaftInternal = 300
	EcodeLeaderElect  = 301

	EcodeWatcherCleared     = 400
	EcodeEventIndexCleared  = 401
	EcodeStandbyInternal    = 402
	EcodeInvalidActiveSize  = 403
	EcodeInvalidRemoveDelay = 404

	EcodeClientInternal = 500
)

var messages = map[int]string{
	EcodeKeyNotFound:      "Key not found",
	EcodeTestFailed:       "Compare failed",
	EcodeNotFile:          "Not a file",
	103:                   "Reached the max number of peers in the cluster",
	EcodeNotDir:           "Not a directory",
	EcodeNodeExist:        "Key already exists",
	EcodeKeyIsPreserved:   "The prefix of given key is a keyword in etcd",
	EcodeRootROnly:        "Root is read only",
	EcodeDirNotEmpty:      "Directory not empty",
	EcodeExistingPeerAddr: "Peer address has existed",
	EcodeUnauthorized:     "The request requires user authentication",

	EcodeValueRequired:        "Value is Required in POST form",
	EcodePrevValueRequired:    "PrevValue is Required in POST form",
	EcodeTTLNaN:               "The given TTL in POST form is not a number",
	EcodeIndexNaN:             "The given index in POST form is not a number",
	EcodeValueOrTTLRequired:   "Value or TTL is required in POST form",
	EcodeTimeoutNaN:           "The given timeout in POST form is not a number",
	EcodeNameRequired:         "Name is required in POST form",
	EcodeIndexOrValueRequired: "Index or value is required",
	EcodeIndexValueMutex:      "Index and value cannot both be specified",
	EcodeInvalidField:         "Invalid field",
	EcodeInvalidForm:          "Invalid POST form",
	EcodeRefreshValue:         "Value provided on refresh",
	EcodeRefreshTTLRequired:   "A TTL must be provided on refresh",

	EcodeRaftInternal: "Raft Internal Error",
	EcodeLeaderElect:  "During Leader Election",

	EcodeWatcherCleared:     "watcher is cleared due to etcd recovery",
	EcodeEventIndexCleared:  "The event in requested index is outdated and cleared",
	EcodeStandbyInternal:    "Standby Internal Error",
	EcodeInvalidActiveSize:  "Invalid active size",
	EcodeInvalidRemoveDelay: "Standby remove delay",

	EcodeClientInternal: "Client Internal Error",
}

// Message returns etcd's exact message text for code, or "" for an unknown code.
func Message(code int) string { return messages[code] }

// Error is a v2 API error as it travels on the wire:
// {"errorCode":N,"message":"…","cause":"…","index":N}.
// The store returns it for domain failures, the HTTP layer maps ErrorCode to a
// status with StatusCode, and the client decodes the same type, so errors.As
// works on both sides of the wire.
type Error struct {
	ErrorCode int    `json:"errorCode"`
	Message   string `json:"message"`
	Cause     string `json:"cause,omitempty"`
	Index     uint64 `json:"index"`
}

// NewError returns an Error with etcd's message for code.
func NewError(code int, cause string, index uint64) *Error {
	return &Error{ErrorCode: code, Message: Message(code), Cause: cause, Index: index}
}

// Error renders the error as etcd and etcdctl do: "100: Key not found (/foo) [12]".
func (e *Error) Error() string {
	return fmt.Sprintf("%d: %s (%s) [%d]", e.ErrorCode, e.Message, e.Cause, e.Index)
}

// StatusCode is the HTTP status etcd's /v2/keys answers with for this error.
func (e *Error) StatusCode() int {
	switch e.ErrorCode {
	case EcodeKeyNotFound:
		return http.StatusNotFound
	case EcodeNotFile, EcodeDirNotEmpty:
		return http.StatusForbidden
	case EcodeTestFailed, EcodeNodeExist:
		return http.StatusPreconditionFailed
	case EcodeUnauthorized:
		return http.StatusUnauthorized
	case EcodeRaftInternal, EcodeLeaderElect:
		return http.StatusInternalServerError
	default:
		return http.StatusBadRequest
	}
}
