package memstore_test

import (
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/guardtest"
	"github.com/guardhq/guard/store/memstore"
)

func newTenants(*testing.T) guard.TenantStore { return memstore.NewTenants() }

func TestTenants(t *testing.T)           { guardtest.Run(t, newTenants) }
func TestTenantsConcurrent(t *testing.T) { guardtest.RunConcurrent(t, newTenants) }
