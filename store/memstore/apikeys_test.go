package memstore_test

import (
	"testing"

	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/auth/authtest"
	"github.com/guardhq/guard/store/memstore"
)

var apiKeys = authtest.Stores{APIKeys: func(*testing.T) auth.APIKeyStore { return memstore.NewAPIKeys() }}

func TestAPIKeys(t *testing.T) { authtest.Run(t, apiKeys) }

func TestAPIKeysConcurrent(t *testing.T) { authtest.RunConcurrent(t, apiKeys) }
