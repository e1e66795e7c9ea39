package sshx

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// ErrHostKeyMismatch is returned when the known_hosts file holds another
// key for the host.
var ErrHostKeyMismatch = errors.New("host key mismatch")

// ErrHostKeyRejected is returned when the user does not trust a new host.
var ErrHostKeyRejected = errors.New("host key verification failed")

// KnownHosts checks host keys against an OpenSSH-style known_hosts file
// (host written as "ip" for port 22, "[ip]:port" otherwise; wildcards,
// negation and hashed entries as OpenSSH). An unknown host is offered to the
// user on Prompt/Answer with fleetctl's trust-on-first-use dialogue and
// added when the answer is yes; a changed key prints the REMOTE HOST
// IDENTIFICATION HAS CHANGED banner and fails.
type KnownHosts struct {
	// File is the known_hosts path; it and its directory are created when
	// a key is added.
	File string
	// Strict false accepts every key without reading or writing File
	// (--strict-host-key-checking=false).
	Strict bool
	// Prompt receives the dialogue (stderr); Answer supplies the reply
	// (stdin).
	Prompt io.Writer
	Answer io.Reader

	mu sync.Mutex
	rd *bufio.Reader
}

// Callback returns the ssh.HostKeyCallback.
func (k *KnownHosts) Callback() ssh.HostKeyCallback {
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		if !k.Strict {
			return nil
		}
		return k.check(hostname, remote, key)
	}
}

// KeyAlgo is the name fleetctl prints for a key type: RSA, DSA, ECDSA, or
// the raw type.
func KeyAlgo(key ssh.PublicKey) string {
	t := key.Type()
	switch {
	case t == ssh.KeyAlgoRSA:
		return "RSA"
	case t == ssh.KeyAlgoDSA:
		return "DSA"
	case strings.HasPrefix(t, "ecdsa-sha2-"):
		return "ECDSA"
	}
	return t
}

func (k *KnownHosts) check(hostname string, remote net.Addr, key ssh.PublicKey) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := ensureFile(k.File); err != nil {
		return err
	}
	cb, err := knownhosts.New(k.File)
	if err != nil {
		return fmt.Errorf("read known hosts file %s: %w", k.File, err)
	}
	err = cb(hostname, remote, key)
	if err == nil {
		return nil
	}
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) {
		return err
	}
	addr := knownhosts.Normalize(hostname)
	algo := KeyAlgo(key)
	fp := ssh.FingerprintLegacyMD5(key)
	if len(ke.Want) > 0 {
		w := ke.Want[0]
		fmt.Fprintf(k.Prompt, hostChangedBanner, algo, fp, w.Filename, w.Line)
		return ErrHostKeyMismatch
	}
	fmt.Fprintf(k.Prompt, "The authenticity of host '%s' can't be established.\n", addr)
	fmt.Fprintf(k.Prompt, "%s key fingerprint is %s.\n", algo, fp)
	fmt.Fprint(k.Prompt, "Are you sure you want to continue connecting (yes/no)? ")
	if k.rd == nil {
		k.rd = bufio.NewReader(k.Answer)
	}
	ans, _ := k.rd.ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(ans)) {
	case "yes", "y":
	default:
		fmt.Fprintln(k.Prompt, "Host key verification failed.")
		return ErrHostKeyRejected
	}
	if err := appendLine(k.File, knownhosts.Line([]string{addr}, key)); err != nil {
		fmt.Fprintf(k.Prompt, "Failed to add the host to the list of known hosts (%s).\n", k.File)
		return err
	}
	fmt.Fprintf(k.Prompt, "Warning: Permanently added '%s' (%s) to the list of known hosts.\n", addr, algo)
	return nil
}

// hostChangedBanner follows OpenSSH's warning (algorithm, fingerprint,
// file, line).
const hostChangedBanner = `@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!
Someone could be eavesdropping on you right now (man-in-the-middle attack)!
It is also possible that a host key has just been changed.
The fingerprint for the %s key sent by the remote host is
%s.
Please contact your system administrator.
Add correct host key in %s to get rid of this message.
Offending key in %[3]s:%[4]d
`

func ensureFile(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create known hosts directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create known hosts file: %w", err)
	}
	return f.Close()
}

func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(f, line); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
