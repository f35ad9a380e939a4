package pgstore_test

import (
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/store/memstore"
)

// APIKEY-7. CreateAPIKey stores the System label of a host-made key, as
// given, as the key's CreatedBy, though System promises that a label is
// "made valid UTF-8 and clipped to MaxSystemLabelBytes" (as it is in the
// audit event of the very same call). The backends then disagree on the
// same call: memstore (and sqlitestore) store the raw label and return
// the key; pgstore refuses it in CreateAPIKey (checkUserText: an
// *auth.InputError), which Guard reports as ErrUnavailable, a store
// failure, for a label the host chose. Expected: the same answer on
// every backend, the label made valid and clipped as System says (or an
// *InputError everywhere), never ErrUnavailable.
func TestAuditAPIKeys_APIKEY7_SystemLabelCreatorDivergesOnPostgres(t *testing.T) {
	label := "nightly-job \xff\xfe"
	nk := guard.NewAPIKey{Tenant: facadeTenant, Name: "host key"}
	mem := newFacade(t, memstore.New().Stores(), nil)
	_, mk, merr := mem.CreateAPIKey(t.Context(), guard.System(label), nk)
	pg := newFacade(t, newStore(t).Stores(), nil)
	_, pk, perr := pg.CreateAPIKey(t.Context(), guard.System(label), nk)
	if errors.Is(perr, guard.ErrUnavailable) {
		t.Errorf("CreateAPIKey by System(%q) on pgstore: %v (a store failure); on memstore: %v (CreatedBy %q): want the same answer, never ErrUnavailable for a host label",
			label, perr, merr, mk.CreatedBy)
	}
	if (merr == nil) != (perr == nil) {
		t.Errorf("backends disagree on CreateAPIKey by System(%q): memstore %v, pgstore %v", label, merr, perr)
	}
	if merr == nil && perr == nil && mk.CreatedBy != pk.CreatedBy {
		t.Errorf("CreatedBy memstore %q, pgstore %q", mk.CreatedBy, pk.CreatedBy)
	}
}
