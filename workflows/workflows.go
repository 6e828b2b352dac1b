// Package workflows holds the deterministic workflow code, one file per domain, with each
// domain's input and result types, signal, update and query names, workflow-id helpers and
// task-queue constants. Nothing here does I/O, reads the clock or draws random numbers except
// through the workflow API.
package workflows

import (
	enumspb "go.temporal.io/api/enums/v1"
)

// SearchAttributes are the custom search attributes the workflows set, by name and type.
// Workers register any that are missing at start, so the Temporal UI can filter on them.
// SQLite visibility (the dev server) has 3 Int and 10 Keyword slots: spend them with care.
func SearchAttributes() map[string]enumspb.IndexedValueType {
	all := map[string]enumspb.IndexedValueType{}
	for _, m := range []map[string]enumspb.IndexedValueType{
		bailoutSearchAttributes, backupSearchAttributes, drillSearchAttributes, forecastSearchAttributes,
	} {
		for k, v := range m {
			all[k] = v
		}
	}
	return all
}
