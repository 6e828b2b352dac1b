package workflows

import enumspb "go.temporal.io/api/enums/v1"

// backupSearchAttributes are the custom search attributes the backup workflow sets.
var backupSearchAttributes = map[string]enumspb.IndexedValueType{}
