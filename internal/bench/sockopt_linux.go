package bench

import "syscall"

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT (linux/in.h): with it, a
// socket bound to a source address gets its port at connect time, unique per
// destination, instead of at bind time, unique per address.
const ipBindAddressNoPort = 24

// bindNoPort is a net.Dialer Control function setting
// IP_BIND_ADDRESS_NO_PORT on IPv4 sockets.
func bindNoPort(network, _ string, c syscall.RawConn) error {
	if network != "tcp4" {
		return nil
	}
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
