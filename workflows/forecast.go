package workflows

import enumspb "go.temporal.io/api/enums/v1"

// forecastSearchAttributes are the custom search attributes the forecast workflow sets.
var forecastSearchAttributes = map[string]enumspb.IndexedValueType{}
