//go:build !linux

package detect

import (
	"context"
	"errors"
)

// SystemAddrs needs Linux's address flags (temporary, deprecated); the box
// runs Linux, and elsewhere IPv6 detection reports the address unknown.
func SystemAddrs() ([]IfAddr, error) {
	return nil, errors.New("listing IPv6 address flags is only implemented on Linux")
}

// SystemAddrEvents is Linux only too; elsewhere the caller's periodic
// probes list the addresses.
func SystemAddrEvents(ctx context.Context, changed func()) error {
	return errors.New("watching address changes is only implemented on Linux")
}
