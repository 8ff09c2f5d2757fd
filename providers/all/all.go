package all

import (
	// Each import registers one provider type in its init function.
	_ "github.com/imagegw/imagegw/providers/ark"
	_ "github.com/imagegw/imagegw/providers/ideogram"
	_ "github.com/imagegw/imagegw/providers/modelverse"
	_ "github.com/imagegw/imagegw/providers/openai"
	_ "github.com/imagegw/imagegw/providers/sandbox"
	_ "github.com/imagegw/imagegw/providers/siliconflow"
	_ "github.com/imagegw/imagegw/providers/yunyx"
)
