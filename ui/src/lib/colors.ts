// Series colours: a categorical palette readable on light and dark panels; Other is grey.
const palette = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#17becf', '#bcbd22', '#8c6bb1']

export const seriesColor = (index: number, other = false) => (other ? '#9aa0a8' : palette[index % palette.length]!)
