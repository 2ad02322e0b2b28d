//go:build !linux

package detect

import "errors"

// SystemAddrs needs Linux's address flags (temporary, deprecated); the box
// runs Linux, and elsewhere IPv6 detection reports the address unknown.
func SystemAddrs() ([]IfAddr, error) {
	return nil, errors.New("listing IPv6 address flags is only implemented on Linux")
}
