// Command etcd is etcd's own main (go.etcd.io/etcd/server/v3) built inside this module: `go install` of the
// server module fails on its relative replace directives, so the local test cluster builds it from here.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
