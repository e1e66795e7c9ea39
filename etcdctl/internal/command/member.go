package command

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/corekit/corekit/etcdctl/internal/format"
)

// MemberOptions are the inputs of the `member` subcommands.
type MemberOptions struct {
	F    *Factory
	Args []string
}

// NewMemberCommand declares `member list|add|remove|update`.
func NewMemberCommand(f *Factory, runF func(context.Context, string, *MemberOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "member",
		Short: "member add, remove and list subcommands",
		Args:  cobra.ArbitraryArgs,
		RunE:  GroupRunE,
	}
	sub := func(use, short string, run func(context.Context, *MemberOptions) error) *cobra.Command {
		name := strings.Fields(use)[0]
		return &cobra.Command{
			Use:   use,
			Short: short,
			RunE: func(cmd *cobra.Command, args []string) error {
				opts := &MemberOptions{F: f, Args: args}
				if runF != nil {
					return runF(cmd.Context(), name, opts)
				}
				return run(cmd.Context(), opts)
			},
		}
	}
	cmd.AddCommand(
		sub("list", "enumerate existing cluster members", runMemberList),
		sub("add <name> <peerURL>", "add a new member to the etcd cluster", runMemberAdd),
		sub("remove <memberID>", "remove an existing member from the etcd cluster", runMemberRemove),
		sub("update <memberID> <peerURLs>", "update an existing member in the etcd cluster", runMemberUpdate),
	)
	return cmd
}

// memberFail is how etcdctl reports member failures: the text on stderr, exit 1.
func memberFail(format string, a ...any) error {
	return &ExitError{Code: ExitBadArgs, Stderr: fmt.Sprintf(format, a...)}
}

func runMemberList(ctx context.Context, opts *MemberOptions) error {
	if len(opts.Args) != 0 {
		return memberFail("No arguments accepted\n")
	}
	c, err := opts.F.Client(ctx)
	if err != nil {
		return err
	}
	tctx, cancel := opts.F.TotalContext(ctx)
	defer cancel()
	ms, err := c.ListMembers(tctx)
	if err != nil {
		return memberFail("%s\n", err)
	}
	leader, err := c.Leader(tctx)
	if err != nil {
		return memberFail("Failed to get leader:  %s\n", err)
	}
	opts.F.IO.Out.Write(format.MemberList(ms, leader.ID)) //nolint:errcheck
	return nil
}

func runMemberAdd(ctx context.Context, opts *MemberOptions) error {
	if len(opts.Args) != 2 {
		return memberFail("Provide a name and a single member peerURL\n")
	}
	c, err := opts.F.Client(ctx)
	if err != nil {
		return err
	}
	tctx, cancel := opts.F.TotalContext(ctx)
	defer cancel()
	name := opts.Args[0]
	m, err := c.AddMember(tctx, []string{opts.Args[1]})
	if err != nil {
		return memberFail("%s\n", err)
	}
	opts.F.IO.Out.Write(format.MemberAdded(name, m.ID)) //nolint:errcheck
	ms, err := c.ListMembers(tctx)
	if err != nil {
		return memberFail("%s\n", err)
	}
	opts.F.IO.Out.Write(format.MemberAddedEnv(name, m.ID, ms)) //nolint:errcheck
	return nil
}

func runMemberRemove(ctx context.Context, opts *MemberOptions) error {
	if len(opts.Args) != 1 {
		return memberFail("Provide a single member ID\n")
	}
	id := opts.Args[0]
	c, err := opts.F.Client(ctx)
	if err != nil {
		return err
	}
	tctx, cancel := opts.F.TotalContext(ctx)
	defer cancel()
	ms, err := c.ListMembers(tctx)
	if err != nil {
		return memberFail("Error while verifying ID against known members: %s\n", err)
	}
	found := false
	for _, m := range ms {
		if m.ID == id {
			found = true
		}
		if m.Name == id {
			fmt.Fprintf(opts.F.IO.ErrOut, "Found a member named %s; if this is correct, please use its ID, eg:\n\tetcdctl member remove %s\n", m.Name, m.ID)
			fmt.Fprintf(opts.F.IO.ErrOut, "For more details, read the documentation at https://github.com/etcd-io/etcd/blob/master/Documentation/runtime-configuration.md#remove-a-member\n\n")
		}
	}
	if !found {
		return memberFail("Couldn't find a member in the cluster with an ID of %s.\n", id)
	}
	if err := c.RemoveMember(tctx, id); err != nil {
		return memberFail("Received an error trying to remove member %s: %s", id, err)
	}
	fmt.Fprintf(opts.F.IO.Out, "Removed member %s from cluster\n", id)
	return nil
}

func runMemberUpdate(ctx context.Context, opts *MemberOptions) error {
	if len(opts.Args) != 2 {
		return memberFail("Provide an ID and a list of comma separated peerURL (0xabcd http://example.com,http://example1.com)\n")
	}
	id := opts.Args[0]
	c, err := opts.F.Client(ctx)
	if err != nil {
		return err
	}
	tctx, cancel := opts.F.TotalContext(ctx)
	defer cancel()
	if err := c.UpdateMember(tctx, id, strings.Split(opts.Args[1], ",")); err != nil {
		return memberFail("%s\n", err)
	}
	fmt.Fprintf(opts.F.IO.Out, "Updated member with ID %s in cluster\n", id)
	return nil
}
