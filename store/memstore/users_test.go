package memstore_test

import (
	"testing"

	"github.com/guardhq/guard/auth/authtest"
	"github.com/guardhq/guard/store/memstore"
)

var users = authtest.Stores{Users: func(*testing.T) authtest.Users { return memstore.NewUsers() }}

func TestUsers(t *testing.T) { authtest.Run(t, users) }

func TestUsersConcurrent(t *testing.T) { authtest.RunConcurrent(t, users) }
