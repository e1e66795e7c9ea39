package etcdctlmain

import (
	"testing"

	"github.com/corekit/corekit/internal/etcdtest"
)

// Golden transcripts of every key command in every output mode.
func TestGoldenKeys(t *testing.T) {
	servers(t, func(t *testing.T, s *etcdtest.Server) { runScript(t, s, "keys", keySteps) })
}

var keySteps = []step{
	{args: "set /ctl/a hello"},
	{args: "get /ctl/a"},
	{args: "-o extended get /ctl/a"},
	{args: "-o json get /ctl/a"},
	{args: "-o extended set /ctl/a hello2"},
	{args: "-o json set /ctl/a hello3"},
	{args: "set --ttl 100 /ctl/t v"},
	{args: "-o extended get /ctl/t"},
	{args: "-o json get /ctl/t"},
	{args: "set -ttl 100 /ctl/t2 single-dash"},
	{args: "set --swap-with-value wrong /ctl/a x"},
	{args: "set --swap-with-value hello3 /ctl/a swapped"},
	{args: "-o json set --swap-with-index 1 /ctl/a x"},
	{args: "set /ctl/stdin", stdin: "from stdin\n"},
	{args: "get /ctl/stdin"},
	{args: "get /ctl/nope"},
	{args: "-o json get /ctl/nope"},
	{args: "-o extended get /ctl/nope"},
	{args: "mk /ctl/a x"},
	{args: "mk /ctl/new fresh"},
	{args: "-o extended mk --ttl 100 /ctl/new2 fresh2"},
	{args: "mk --in-order /ctl/q job1"},
	{args: "-o json mk --in-order /ctl/q job2"},
	{args: "-o extended mk --in-order /ctl/q job3"},
	{args: "ls --sort /ctl/q"},
	{args: "update /ctl/nope x"},
	{args: "update /ctl/new updated"},
	{args: "-o extended update --ttl 100 /ctl/new updated2"},
	{args: "-o json update /ctl/new updated3"},
	{args: "mkdir /ctl/d"},
	{args: "mkdir /ctl/d"},
	{args: "-o json mkdir /ctl/d2"},
	{args: "-o extended mkdir --ttl 100 /ctl/d3"},
	{args: "setdir /ctl/sd"},
	{args: "setdir /ctl/sd"},
	{args: "updatedir /ctl/sd"},
	{args: "-o json updatedir --ttl 100 /ctl/sd"},
	{args: "updatedir /ctl/nodir"},
	{args: "get /ctl/d"},
	{args: "set /ctl/d/x 1"},
	{args: "set /ctl/d/y 2"},
	{args: "mkdir /ctl/d/sub"},
	{args: "set /ctl/d/sub/z 3"},
	{args: "ls --sort /ctl"},
	{args: "ls --sort -p /ctl"},
	{args: "ls --sort --recursive /ctl/d"},
	{args: "ls --sort -r -p --quorum /ctl/d"},
	{args: "ls -sort -recursive -p /ctl/d"},
	{args: "ls /ctl/d/x"},
	{args: "ls /ctl/nope"},
	{args: "-o extended ls --sort /ctl/d"},
	{args: "-o json ls --sort /ctl/d/sub"},
	{args: "get --sort --quorum /ctl/d/x"},
	{args: "get -q /ctl/d/y"},
	{args: "rmdir /ctl/d"},
	{args: "rm /ctl/d"},
	{args: "rm --dir /ctl/d"},
	{args: "rm --with-value wrong /ctl/d/x"},
	{args: "rm --with-value 1 /ctl/d/x"},
	{args: "-o extended rm --with-index 1 /ctl/d/y"},
	{args: "rm /ctl/d/y"},
	{args: "-o json rm /ctl/a"},
	{args: "-o extended rm /ctl/new"},
	{args: "rm --dir /ctl/d2"},
	{args: "-o extended rmdir /ctl/d3"},
	{args: "rmdir /ctl/nope"},
	{args: "rm --recursive /ctl/d"},
	{args: "-o json rm -r /ctl/q"},
	{args: "rm /ctl/nope"},
}

// Bad usage: one line naming the problem, a usage hint, a non-zero exit.
func TestGoldenUsage(t *testing.T) {
	steps := []step{
		{args: "get"},
		{args: "set /k"},
		{args: "set"},
		{args: "mk /k"},
		{args: "update /k"},
		{args: "mkdir"},
		{args: "setdir"},
		{args: "updatedir"},
		{args: "rm"},
		{args: "rmdir"},
		{args: "watch"},
		{args: "exec-watch /k"},
		{args: "get --bogus /k"},
		{args: "-bogus get /k"},
		{args: "set --ttl notanumber /k v"},
		{args: "frobnicate"},
		{args: "member frobnicate"},
		{args: "-o yaml get /k"},
		{args: "--version"},
	}
	servers(t, func(t *testing.T, s *etcdtest.Server) { runScript(t, s, "usage", steps) })
}

// Member commands and cluster-health on a single-member cluster.
func TestGoldenMembers(t *testing.T) {
	servers(t, func(t *testing.T, s *etcdtest.Server) { runScript(t, s, "members", memberSteps) })
}

var memberSteps = []step{
	{args: "member list"},
	{args: "member list extra"},
	{args: "member add"},
	{args: "member add n1 http://127.0.0.1:1 http://127.0.0.1:2"},
	{args: "member remove"},
	{args: "member remove abc"},
	{args: "member remove default"},
	{args: "member update"},
	{args: "member update abc http://127.0.0.1:9"},
	{args: "cluster-health"},
	{args: "--no-sync member list"},
}
