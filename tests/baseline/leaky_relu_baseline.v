// Hand-written LeakyReLU baseline: y = x >= 0 ? x : (slope * x) >>> SF, the obvious way.
// No saturation and no tricks: the product is truncated back to W bits.
// W: data width; SF: slope fraction bits; SLOPE: constant slope code (signed, W bits);
// RUNTIME: 1 takes the slope from the `slope` port instead; STAGES: 1 registers y.
module leaky_relu_baseline #(
    parameter W = 8,
    parameter SF = 4,
    parameter SLOPE = 5,
    parameter RUNTIME = 0,
    parameter STAGES = 0
) (
    input clk,
    input signed [W-1:0] x,
    input signed [W-1:0] slope,
    output signed [W-1:0] y
);
    wire signed [W-1:0] s = RUNTIME ? slope : SLOPE;
    wire signed [2*W-1:0] prod = x * s;
    wire signed [2*W-1:0] scaled = prod >>> SF;
    wire signed [W-1:0] r = x[W-1] ? scaled[W-1:0] : x;
    generate
        if (STAGES) begin : reg_out
            reg signed [W-1:0] q;
            always @(posedge clk) q <= r;
            assign y = q;
        end else begin : comb_out
            assign y = r;
        end
    endgenerate
endmodule
