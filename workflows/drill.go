package workflows

import enumspb "go.temporal.io/api/enums/v1"

// drillSearchAttributes are the custom search attributes the drill workflow sets.
var drillSearchAttributes = map[string]enumspb.IndexedValueType{}
