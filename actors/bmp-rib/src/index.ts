// The bmp-rib actor: a BMP collector keeping a compact RIB that answers batched routing lookups
export {}
