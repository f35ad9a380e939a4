package memstore_test

import (
	"testing"

	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/ipfilter/ipfiltertest"
	"github.com/guardhq/guard/store/memstore"
)

func newIPLists(*testing.T) ipfilter.Store { return memstore.NewIPLists() }

func TestIPLists(t *testing.T) { ipfiltertest.Run(t, newIPLists) }

func TestIPListsConcurrent(t *testing.T) { ipfiltertest.RunConcurrent(t, newIPLists) }
