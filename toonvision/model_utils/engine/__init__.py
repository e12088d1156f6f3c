"""engine: where a comparison's runs train (this process, or Ray workers); `choose.make_engine`."""
